"""Window geometry: output sizes round down, im2col copies receptive fields, col2im is its adjoint."""
import numpy as np
import pytest

from tinyalex import functional as F

# (x shape, kernel, stride, padding): overlap, padding, odd and rectangular sizes, a kernel as large as the input
WINDOWS = [
    ((2, 3, 7, 7), (3, 3), 1, 0),
    ((2, 3, 9, 9), (3, 3), 2, 1),           # stride < kernel: overlapping windows
    ((1, 3, 11, 11), (5, 5), 3, 2),         # batch 1, odd sizes
    ((2, 4, 8, 9), (3, 2), 2, 1),           # rectangular kernel
    ((3, 6, 6, 5), (2, 3), (2, 1), (0, 2)),  # per-axis stride and padding
    ((2, 2, 5, 5), (5, 5), 1, 0),           # kernel as large as the input: 1x1 output
]


def test_outsize_floor_rounding_and_the_papers_227():
    assert F.conv_outsize(227, 11, 4, 0) == 55      # paper section 3.5: 55x55 maps from 227x227
    assert F.conv_outsize(224, 11, 4, 0) == 54      # ... which 224x224 would not give
    assert F.conv_outsize(224, 11, 4, 2) == 55
    assert [F.conv_outsize(n, 3, 2, 0) for n in (55, 27, 13)] == [27, 13, 6]  # overlapping pooling
    assert F.conv_outsize(32, 5, 1, 2) == 32


@pytest.mark.parametrize("args, match", [
    ((4, 5, 1, 0), r"kernel size 5 is larger than the padded input \(4 \+ 2\*0 = 4\)"),
    ((4, 3, 0, 0), "stride must be positive, got 0"),
])
def test_outsize_errors(args, match):
    with pytest.raises(ValueError, match=f"conv_outsize: {match}"):
        F.conv_outsize(*args)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
def test_col2im_is_the_adjoint_of_im2col(rng, x_shape, kernel, stride, padding):
    """<im2col(x), c> = <x, col2im(c)>: overlapping windows must add up in col2im, not overwrite."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, np.broadcast_to(stride, 2), np.broadcast_to(padding, 2)
    x = rng.standard_normal(x_shape)
    col = F.im2col(x, KH, KW, SH, SW, PH, PW)
    c = rng.standard_normal(col.shape)
    assert np.isclose(np.vdot(col, c), np.vdot(x, F.col2im(c, x_shape, KH, KW, SH, SW, PH, PW)), rtol=1e-12)


def test_im2col_columns_are_receptive_fields(rng):
    x = rng.standard_normal((2, 3, 5, 6))
    col = F.im2col(x, 3, 2, 2, 1, 1, 0)                      # OH = 3, OW = 5
    n, oh, ow = 1, 2, 3
    field = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))[n, :, oh * 2:oh * 2 + 3, ow:ow + 2]
    np.testing.assert_array_equal(col[:, (n * 3 + oh) * 5 + ow], field.ravel())


@pytest.mark.parametrize("shape, PH, PW", [((2, 3, 4, 5), 1, 2), ((4, 6), 2, 0), ((1, 2, 3, 3), 0, 1), ((2, 1, 1), 3, 3)])
@pytest.mark.parametrize("value", [0, -np.inf, 2.5])
def test_pad2d_is_nps_constant_padding_of_the_last_two_axes(rng, shape, PH, PW, value):
    from tinyalex.functional.im2col import pad2d
    x = rng.standard_normal(shape).astype(np.float32)
    want = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(PH, PH), (PW, PW)], constant_values=value)
    got = pad2d(x, PH, PW, value)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
@pytest.mark.parametrize("groups", [1, 2])
def test_shared_rows_hold_im2cols_columns_output_row_by_output_row(rng, x_shape, kernel, stride, padding, groups):
    """MEC's lowering: image n's output row oh of the shared rows is im2col's columns of that row,
    with the taps in the order (kernel row, channel, kernel column)."""
    from tinyalex.functional.im2col import pad2d, shared_rows
    (N, C, H, W), (KH, KW) = x_shape, kernel
    (SH, SW), (PH, PW) = np.broadcast_to(stride, 2), np.broadcast_to(padding, 2)
    if C % groups:
        pytest.skip("channels not divisible by the groups")
    OH, OW = F.conv_outsize(H, KH, SH, PH), F.conv_outsize(W, KW, SW, PW)
    x = rng.standard_normal(x_shape)
    rows = shared_rows(pad2d(x, PH, PW), KH, KW, SH, SW, groups)
    assert rows.shape == (N, groups, OH, KH * (C // groups) * KW, OW)
    # im2col's rows (c, i, j), columns (n, oh, ow) -> (n, g, oh, (i, c, j), ow)
    col = F.im2col(x, KH, KW, SH, SW, PH, PW).reshape(groups, C // groups, KH, KW, N, OH, OW)
    want = col.transpose(4, 0, 5, 2, 1, 3, 6).reshape(rows.shape)
    np.testing.assert_array_equal(rows, want)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
def test_polyphase_components_hold_every_windows_tap_as_one_shifted_run(rng, x_shape, kernel, stride, padding):
    """P[a, b, n, c, h, w] = x_padded[n, c, h*SH + a, w*SW + b] (the value past the input), and tap (i, j)
    of every window is component (i % SH, j % SW) shifted by (i // SH, j // SW): the strided slice
    ``window`` cuts from the padded input."""
    from tinyalex.functional.im2col import pad2d, phases, window
    (N, C, H, W), (KH, KW) = x_shape, kernel
    (SH, SW), (PH, PW) = np.broadcast_to(stride, 2), np.broadcast_to(padding, 2)
    x = rng.standard_normal(x_shape)
    P, padded = phases(x, SH, SW, PH, PW, -np.inf), pad2d(x, PH, PW, -np.inf)
    Hp, Wp = -(-(H + 2 * PH) // SH), -(-(W + 2 * PW) // SW)
    assert P.shape == (SH, SW, N, C, Hp, Wp)
    for a, b, h, w in np.ndindex(SH, SW, Hp, Wp):
        inside = h * SH + a < padded.shape[2] and w * SW + b < padded.shape[3]
        want = padded[:, :, h * SH + a, w * SW + b] if inside else np.full((N, C), -np.inf)
        np.testing.assert_array_equal(P[a, b, :, :, h, w], want)
    OH, OW = F.conv_outsize(H, KH, SH, PH), F.conv_outsize(W, KW, SW, PW)
    for i, j in np.ndindex(KH, KW):
        run = P[i % SH, j % SW, :, :, i // SH:i // SH + OH, j // SW:j // SW + OW]
        np.testing.assert_array_equal(run, padded[(Ellipsis, *window(i, j, OH, OW, SH, SW))])


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
@pytest.mark.parametrize("images_last", [False, True])
def test_the_view_of_every_window_holds_each_kernel_offsets_strided_slice(rng, x_shape, kernel, stride, padding,
                                                                          images_last):
    """windows(...)[..., i, j, :, :, ...] is the slice ``window(i, j)`` cuts from the padded input, for
    the images first (N, C, H, W; lead 2) and last (C, H, W, N; lead 1); fill_columns copies it whole."""
    from tinyalex.functional.im2col import fill_columns, pad2d, padded_images_last, window, windows
    (_, _, H, W), (KH, KW) = x_shape, kernel
    (SH, SW), (PH, PW) = np.broadcast_to(stride, 2), np.broadcast_to(padding, 2)
    OH, OW = F.conv_outsize(H, KH, SH, PH), F.conv_outsize(W, KW, SW, PW)
    x = rng.standard_normal(x_shape)
    xc, lead = (padded_images_last(x, PH, PW), 1) if images_last else (pad2d(x, PH, PW), 2)
    view = windows(xc, KH, KW, OH, OW, SH, SW, lead)
    assert view.shape == xc.shape[:lead] + (KH, KW, OH, OW) + xc.shape[lead + 2:]
    axes = (slice(None),) * lead
    for i, j in np.ndindex(KH, KW):
        np.testing.assert_array_equal(view[axes + (i, j)], xc[axes + window(i, j, OH, OW, SH, SW)])
    col = fill_columns(np.empty(view.shape), xc, SH, SW, lead)
    np.testing.assert_array_equal(col, view)
