"""Without --target-fps or --folding, step_to_hw picks the fastest folding whose
FINN estimate fits 70 % of the board (frontend/folding.py: fold_fastest_fitting)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from types import SimpleNamespace

from build_flows.config import BOARDS, BuildConfig
from build_flows.flow import run_build
from build_flows.frontend import folding


def _cnv_to_hw(tmp_path):
    """A randomised (seeded) SD-BNN CNV to the HW graph at the default folding:
    (state, cfg, stdout)."""
    import torch
    from helpers import randomise_sd_parameters
    from quant_models import get_model
    from quant_models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    ckpt = tmp_path / "cnv.pt"
    save_checkpoint(ckpt, randomise_sd_parameters(get_model("cnv")))
    cfg = BuildConfig(board="pynq-z2", model="cnv", checkpoint=ckpt, dataset="random",
                      verify_images=2, out=tmp_path / "b", yosys=False)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        state = run_build(cfg, to_step="to_hw")
    return state, cfg, buf.getvalue()


def test_cnv_default_folding_is_the_fastest_that_fits(tmp_path):
    """The old default (100,000 FPS) made --model cnv fail (249,381 LUT estimated):
    now the build picks a folding that fits, and one about 2 % faster does not."""
    state, cfg, out = _cnv_to_hw(tmp_path)
    choice, board = state.folding_choice, BOARDS["pynq-z2"]
    assert choice["fits"] is True and choice["share"] == 0.7
    est = folding.estimate_total(state.hw, board.part)
    assert est == choice["estimate"] and folding.fits(est, board)
    assert est["LUT"] <= 0.7 * 53_200 and est["BRAM36"] <= 0.7 * 140
    assert choice["cycles"] == folding.bottleneck_cycles(state.hw)
    assert f"the fastest that fits pynq-z2: {100e6 / choice['cycles']:,.0f} FPS" in out
    written = json.loads((cfg.out / "folding_config.json").read_text())
    assert written["MVAU_0"]["PE"] > 1  # not the most folded design
    faster = folding.fold_for_target(copy.deepcopy(state.hw), int(0.98 * choice["cycles"]))
    assert not folding.fits(folding.estimate_total(faster, board.part), board)
    # a board too small for even the most folded design: fits is False and the
    # design returned is the most folded one (the board check then names what is over)
    hw = copy.deepcopy(state.hw)
    tiny = SimpleNamespace(part=BOARDS["pynq-z2"].part, LUT=1000, BRAM36=2, DSP=0)
    model, choice = folding.fold_fastest_fitting(hw, tiny)
    assert choice["fits"] is False
    assert choice["cycles"] == folding.bottleneck_cycles(folding.fold_for_target(hw, 1 << 62))
