"""A folding that does not divide is refused before any RTL is made:
check_folding raises FoldingError naming the layer and the choices."""

import numpy as np
import pytest

from build_flows.errors import FoldingError
from build_flows.frontend.folding import check_folding
from opgraph import mvau_model


@pytest.mark.parametrize("simd,pe,message", [
    pytest.param(4, 3, r"layer MVAU_0: PE=3 does not divide MH=8; choose PE from \[1, 2, 4, 8\]",
                 id="PE3-MH8"),
    pytest.param(5, 2, r"layer MVAU_0: SIMD=5 does not divide MW=16; choose SIMD from "
                 r"\[1, 2, 4, 8, 16\]", id="SIMD5-MW16"),
])
def test_folding_that_does_not_divide(simd, pe, message):
    rng = np.random.default_rng(80)
    model = mvau_model(16, 8, simd, pe, "BINARY", "BINARY", "BINARY", rng.integers(0, 2, (16, 8)),
                       rng.integers(6, 11, (8, 1)))
    with pytest.raises(FoldingError, match=message):
        check_folding(model)


def test_dividing_folding_passes():
    rng = np.random.default_rng(81)
    model = mvau_model(16, 8, 4, 2, "BINARY", "BINARY", "BINARY", rng.integers(0, 2, (16, 8)),
                       rng.integers(6, 11, (8, 1)))
    assert check_folding(model) is None
