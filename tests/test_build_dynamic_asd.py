"""Dynamic ASD end to end: a seeded, randomised SD-BNN with dynamic ASD
(quant_models.layers.DynamicASD after every hidden layer) builds to RTL with
one hw/dynamic_asd.sv unit per block, simulates in Verilator equal to PyTorch
(every link's beats against the HW graph, the last layer's integers against
PyTorch's logits) under random stalls, at the analytic II."""
import pytest
import torch

from build_flows.config import BuildConfig
from build_flows.flow import run_build
from helpers import assert_ii_at_analytic, randomise_sd_parameters
from quant_models import get_model
from quant_models.checkpoint import save_checkpoint


def _build(tmp_path, name, dataset, target_fps, seed=0, frames=6):
    torch.manual_seed(seed)
    model = randomise_sd_parameters(get_model(name, asd="dynamic"), seed=seed)
    save_checkpoint(tmp_path / "m.pt", model)
    return run_build(BuildConfig(board="pynq-z2", model=name, checkpoint=tmp_path / "m.pt",
                                 dataset=dataset, verify_images=frames, out=tmp_path / "b",
                                 yosys=False, target_fps=target_fps))


def _check(state, units):
    sim = state.sim
    assert sim["mismatches"] == 0 and sim["differences"] == []
    assert_ii_at_analytic(sim)
    stages = [st for st in state.graph.layers() if st.op == "DynamicASD"]
    assert len(stages) == units
    assert all(st.module == "dynamic_asd" and st.mem_files for st in stages)
    return stages


@pytest.fixture(scope="module")
def dynamic_conv_build(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("dasd"), "digits_cnv", "digits", 20_000)


def test_dynamic_asd_conv_model_builds_and_equals_pytorch(dynamic_conv_build):
    """digits_cnv: two conv blocks (channel means over the map) and one FC block."""
    stages = _check(dynamic_conv_build, 3)
    # the units' tables travel as memory files named by their layer
    assert all(all(f.startswith(st.name + "_") for f in st.mem_files) for st in stages)


def test_dynamic_asd_fc_model_builds_and_equals_pytorch(tmp_path):
    """tfc: three FC blocks (one value per channel; the MLP bounds the II)."""
    _check(_build(tmp_path, "tfc", "random", 20_000), 3)



def test_a_frame_too_large_for_the_board_bram_is_refused_by_layer(dynamic_conv_build):
    """The unit buffers two frames of its layer's 8-bit map: on a board with
    less block RAM than that (a hypothetical one with half a BRAM36), the
    to_hw step's board check names the layer, the map and the BRAM it needs,
    whatever the folding."""
    import dataclasses

    from build_flows.config import BOARDS
    from build_flows.errors import DoesNotFitError
    from build_flows.frontend.support import check_board
    tiny = dataclasses.replace(BOARDS["pynq-z2"], BRAM36=0.5)
    check_board(dynamic_conv_build.hw, "pynq-z2", BOARDS["pynq-z2"])  # fits the real board
    with pytest.raises(DoesNotFitError, match=r"layer DynamicASD_\S+ \(DynamicASD\) holds two frames "
                       r"of its 6x6x32 8-bit feature map \(18,432 bits, 1 BRAM36\) and tiny has 0.5"):
        check_board(dynamic_conv_build.hw, "tiny", tiny)


@pytest.mark.slow
def test_dynamic_asd_cnv_builds_and_equals_pytorch(tmp_path):
    """CNV with dynamic ASD after each of its eight hidden layers (about 8 min
    here): at 1,525 FPS, half of FINN's CNV-W1A1 throughput, since the frame
    rings do not fit pynq-z2's BRAM next to a 3,050 FPS folding."""
    _check(_build(tmp_path, "cnv", "random", 1_525, frames=8), 8)


def test_ring_bram_by_hand():
    """The ring's block RAM: the best tiling by 36 kbit or 18 kbit blocks."""
    from build_flows.ops.dynamic_asd import ring_bram36
    assert ring_bram36(8, 1024) == 0.5  # one BRAM18 as 1K x 18
    assert ring_bram36(8, 2304) == 1.0  # one BRAM36 as 4K x 9 (or two BRAM18 as 2K x 9)
    assert ring_bram36(16, 57600) == 28.5  # 57 BRAM18 as 1K x 18 (29 BRAM36 as 2K x 18)
    assert ring_bram36(72, 512) == 1.0
