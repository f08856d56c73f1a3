"""A wrong layer in the hardware is found and named: the per-link comparison
with the HW graph names the first layer whose output differs, with the frame,
the element and both values. The hardware here is an existing build whose
rtl/ a user edited by hand and re-verified with --from-step simulate."""

import contextlib
import io

from build_flows.build import main
from build_flows.config import DEFAULT_CHECKPOINT


def _invert_hex(text: str) -> str:
    """Every bit of every $readmemh word flipped (same width)."""
    return "".join(f"{int(w, 16) ^ ((1 << 4 * len(w)) - 1):0{len(w)}x}\n" for w in text.split())


def test_edited_rtl_is_reverified_and_the_layer_named(tmp_path, capsys):
    out = tmp_path / "b"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--board", "pynq-z2", "--checkpoint", str(DEFAULT_CHECKPOINT),
                     "--verify-images", "8", "--no-yosys", "--out", str(out)]) == 0
    weights = out / "rtl" / "MVAU_2_weights.mem"
    weights.write_text(_invert_hex(weights.read_text()))
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--out", str(out), "--from-step", "simulate"])  # its build_config.json
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: hardware differs: layer MVAU_2 (mvtu) differs from the HW "
                             "graph in the free_running run: frame 0, element ")
    assert not (out / "report.json").exists()  # the failed re-verification left no stale report
