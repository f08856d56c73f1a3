"""docker/: the Dockerfile passes hadolint and the scripts pass shellcheck
(both from PyPI wheels in .venv/lint, see Makefile); run.sh refuses a folder
without Vivado in one `error:` line. No Docker engine here: the image itself
is not built (README, On the board)."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT = REPO / ".venv" / "lint" / "bin"


def tool(name: str) -> Path:
    path = LINT / name
    if not path.exists():
        pytest.fail(f"{path} missing: run `make setup` (it installs the linters)")
    return path


def test_dockerfile_passes_hadolint():
    proc = subprocess.run([str(tool("hadolint")), str(REPO / "docker" / "Dockerfile")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_pass_shellcheck():
    scripts = [str(REPO / "docker" / n) for n in ("run.sh", "entrypoint.sh")]
    proc = subprocess.run([str(tool("shellcheck")), *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_sh_refuses_a_folder_without_vivado(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "docker" / "run.sh"), str(tmp_path), "--",
                           "--board", "pynq-z2"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "settings64.sh" in lines[0]


def test_run_sh_needs_the_separator():
    proc = subprocess.run(["bash", str(REPO / "docker" / "run.sh"), "/x", "--board"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("usage:")
