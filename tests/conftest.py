import os

import pytest

# Keep every test on one thread per process: the CI machine has 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from torch seed 0, so a random model (weights drawn at
    construction) is the same in every run and a failure replays."""
    import torch
    torch.manual_seed(0)
