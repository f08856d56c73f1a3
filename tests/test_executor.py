"""The fast executor's integer kernels against plain int64 NumPy arithmetic:
every path of int_matmul (int8 GEMM, uint8 offset, float32 and float64
BLAS) and multithreshold's integer compares at the edges of x's range."""

import numpy as np
import pytest

from build_flows.sim.executor import ExecutorError, int_matmul, multithreshold


@pytest.mark.parametrize("x_range, w_range, k", [
    ((0, 2), (-1, 2), 576),          # binary x, bipolar w: the XNOR layers
    ((-1, 2), (-1, 2), 33),          # bipolar x
    ((0, 256), (-128, 128), 27),     # 8-bit pixels, 8-bit weights: the uint8 offset
    ((-128, 128), (-128, 128), 7),   # int8 both
    ((-300, 300), (-1, 2), 64),      # x beyond int8: float32 BLAS
    ((0, 2), (-200, 200), 64),       # w beyond int8: float32 BLAS
    ((-2 ** 20, 2 ** 20), (-100, 100), 50),  # sums beyond 2**24: float64
])
def test_int_matmul_equals_int64(x_range, w_range, k):
    rng = np.random.default_rng(k)
    x = rng.integers(*x_range, size=(3, 17, k))
    w = rng.integers(*w_range, size=(k, 11)).astype(np.float32)  # initialisers are float
    got = int_matmul(x, w)
    want = x.astype(np.int64) @ w.astype(np.int64)
    assert got.shape == (3, 17, 11)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got.astype(np.int64), want)


def test_int_matmul_extreme_uint8_column():
    """Every x = 255 and every w = -128 (the offset's largest correction)."""
    x = np.full((4, 100), 255, dtype=np.int16)
    w = np.full((100, 3), -128.0, dtype=np.float32)
    np.testing.assert_array_equal(int_matmul(x, w), np.full((4, 3), 255 * -128 * 100))


def test_int_matmul_refuses_fractional_weights():
    with pytest.raises(ExecutorError, match="not integers"):
        int_matmul(np.ones((2, 3), dtype=np.int8), np.full((3, 2), 0.5, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8, np.float32])
def test_multithreshold_integer_compares(dtype):
    """Thresholds below, at, between and above the data's range, fractional and
    not, as a reference count in float64 gives them."""
    rng = np.random.default_rng(5)
    lo, hi = (0, 200) if dtype == np.uint8 else (-100, 100)
    x = rng.integers(lo, hi + 1, size=(2, 9, 4)).astype(dtype)
    x[0, 0] = lo
    x[0, 1] = hi
    t = np.array([[lo - 1e6, lo, lo + 0.5, 3, 3.01, hi, hi + 0.25, 1e9],
                  [-1e12, lo - 1, lo + 1, hi - 0.5, hi, hi, hi + 1, 2e12],
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                  [hi + 1, hi + 2, hi + 3, hi + 4, hi + 5, hi + 6, hi + 7, hi + 8]])
    want = (x.astype(np.float64)[..., None] >= t).sum(axis=-1)
    np.testing.assert_array_equal(multithreshold(x, t), want)
    np.testing.assert_array_equal(multithreshold(x, t, 2, -1), 2 * want - 1)
    one = t[:, 2:3]
    np.testing.assert_array_equal(multithreshold(x, one), (x.astype(np.float64) >= one[:, 0]).astype(int))


@pytest.mark.parametrize("kernel, stride, dilation", [
    ((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (1, 1)), ((3, 2), (2, 3), (2, 1)), ((1, 1), (2, 2), (1, 1)),
    ((5, 5), (1, 1), (1, 1))])
def test_im2col_equals_loops(kernel, stride, dilation):
    """(N, H, W, C) -> (N, OH, OW, KH * KW * C), kernel positions outer and
    channels inner, against explicit loops over every output pixel."""
    from build_flows.sim.executor import im2col
    rng = np.random.default_rng(3)
    x = rng.integers(-5, 5, size=(2, 9, 8, 3))
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = (9 - dh * (kh - 1) - 1) // sh + 1, (8 - dw * (kw - 1) - 1) // sw + 1
    want = np.zeros((2, oh, ow, kh * kw * 3), dtype=x.dtype)
    for n in range(2):
        for i in range(oh):
            for j in range(ow):
                want[n, i, j] = np.concatenate([x[n, i * sh + a * dh, j * sw + b * dw]
                                                for a in range(kh) for b in range(kw)])
    np.testing.assert_array_equal(im2col(x, kernel, stride, dilation), want)
