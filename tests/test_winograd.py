"""Winograd convolution: the Cook-Toom transforms are exact, the layer matches im2col in float64 and
within a measured float32 error, gradients check, and "auto" follows its documented rule."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex import backend, nn, threads
from tinyalex.functional import conv, conv_algorithm, winograd
from tinyalex.functional.reference import conv2d_backward_reference, conv2d_reference

TILES = [(2, 3), (4, 3), (5, 3), (2, 5), (4, 5), (5, 5)]  # F(m, r)


@pytest.mark.parametrize("m, r", TILES)
def test_cook_toom_gives_m_outputs_of_a_correlation_from_alpha_products(rng, m, r):
    AT, G, BT = winograd.cook_toom(m, r)
    assert AT.shape == (m, m + r - 1) and G.shape == (m + r - 1, r) and BT.shape == (m + r - 1, m + r - 1)
    d, g = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid"), rtol=1e-13, atol=1e-13)


def test_f23_at_the_points_0_1_minus1_infinity_is_lavin_and_grays_up_to_where_the_halves_sit():
    AT, G, BT = winograd.cook_toom(2, 3)
    np.testing.assert_array_equal(AT, [[1, 1, 1, 0], [0, 1, -1, 1]])
    # the paper's G has the rows [1/2, 1/2, 1/2] and [1/2, -1/2, 1/2]; here the halves are in B^T
    np.testing.assert_array_equal(G, [[1, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(BT, [[1, 0, -1, 0], [0, .5, .5, 0], [0, -.5, .5, 0], [0, -1, 0, 1]])


@pytest.mark.parametrize("m, r", TILES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_transform_is_t_d_t_transposed_on_every_tile(rng, m, r, contiguous):
    """transform(T, D)[:, :, x] = T D[:, :, x] T^T for every tile x, written into ``out`` when given,
    also for a D that is a strided view (backward's tiles of gy)."""
    AT, _, BT = winograd.cook_toom(m, r)
    alpha = m + r - 1
    D = rng.standard_normal((alpha, alpha, 3, 5))
    if not contiguous:
        D = rng.standard_normal((5, alpha, 3, alpha)).transpose(1, 3, 2, 0)
    for T in (BT, AT):
        want = np.einsum("ia,abxy,jb->ijxy", T, D, T)
        np.testing.assert_allclose(winograd.transform(T, D), want, rtol=1e-12, atol=1e-12)
        out = np.empty((T.shape[0], T.shape[0], 15))
        got = winograd.transform(T, D, out=out)
        assert np.shares_memory(got, out)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, r", TILES)
@pytest.mark.parametrize("workers", [1, 3])
def test_the_filters_transforms_by_g_kron_g_are_g_g_gt_and_its_adjoint(rng, monkeypatch, m, r, workers):
    """filters: U = G g G^T for every filter, each group's (O/G, C/G) block; flipped: the same for the
    180-degree rotated filters with their input and output channels swapped; filter_gradient:
    G^T gU G, the adjoint. On one thread and with the filters cut among three."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(winograd, "KRON_MIN_VALUES", 1)
    _, G, _ = winograd.cook_toom(m, r)
    alpha, groups, (O, Cg) = m + r - 1, 2, (6, 5)
    w = rng.standard_normal((O, Cg, r, r))
    gU = rng.standard_normal((alpha * alpha, groups, O // groups, Cg))
    rotated = w[:, :, ::-1, ::-1].reshape(groups, O // groups, Cg, r, r).swapaxes(1, 2).reshape(groups * Cg, O // groups, r, r)
    with threads.workers(workers):
        U, flipped, gW = (winograd.filters(w, m, groups), winograd.filters(w, m, groups, flipped=True),
                          winograd.filter_gradient(gU, m, r))
    for got, filters in ((U, w), (flipped, rotated)):
        want = np.einsum("ia,oxab,jb->ijox", G, filters, G).reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    want = np.einsum("ia,ijox,jb->oxab", G, gU.reshape(alpha, alpha, O, Cg), G)
    np.testing.assert_allclose(gW, want, rtol=1e-12, atol=1e-12)


def test_a_tile_with_no_interpolation_points_is_refused():
    with pytest.raises(ValueError, match=r"winograd: no interpolation points for tiles of 10 \(F\(4, 7\)\)"):
        winograd.cook_toom(4, 7)


# (x shape, weight shape, padding, groups): remainder tiles (sizes not multiples of m), odd and
# rectangular maps, groups, padding wider than the filter (its input gradient crops gy), and maps
# that the tiles cover exactly (no remainder: the blocks are written straight to their places)
CASES = [
    ((2, 3, 8, 4), (4, 3, 3, 3), (1, 1), 1),
    ((2, 3, 7, 9), (4, 3, 3, 3), (1, 1), 1),
    ((1, 4, 6, 5), (6, 2, 3, 3), (0, 2), 2),
    ((2, 2, 5, 5), (3, 2, 3, 3), (3, 3), 1),
    ((1, 3, 9, 8), (2, 3, 5, 5), (2, 1), 1),
    ((2, 4, 5, 6), (4, 2, 5, 5), (0, 0), 2),
]
FAST_CASES = [(m, *case) for m, r in TILES for case in CASES if case[1][2] == r]


def _tensors(rng, x_shape, w_shape, dtype="float64"):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    return [ta.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b)]


@pytest.mark.parametrize("m, x_shape, w_shape, padding, groups", FAST_CASES)
def test_winograd_matches_the_loop_reference_in_float64(rng, m, x_shape, w_shape, padding, groups):
    x, w, b = _tensors(rng, x_shape, w_shape)
    y = winograd.Winograd2d(padding, groups, m)(x, w, b)
    np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, b.data, 1, padding, groups), atol=1e-11)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    for got, want in zip((x.grad, w.grad, b.grad), conv2d_backward_reference(x.data, w.data, gy, 1, padding, groups)):
        np.testing.assert_allclose(got, want, atol=1e-11)


@pytest.mark.parametrize("m, x_shape, w_shape, padding, groups", FAST_CASES)
def test_winograd_gradcheck(rng, m, x_shape, w_shape, padding, groups):
    assert ta.gradcheck(lambda x, w, b: winograd.Winograd2d(padding, groups, m)(x, w, b),
                        *_tensors(rng, x_shape, w_shape))


def test_conv2d_algorithm_winograd_gradcheck(rng):
    assert ta.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1, algorithm="winograd"),
                        *_tensors(rng, (2, 3, 6, 7), (4, 3, 3, 3)))


def _relative_errors(fn, x, w, b, gy):
    """max |got - want| / max |want| of y, gx, gW for fn in float32 against im2col in float64."""
    results = []
    for dtype in ("float64", "float32"):
        ts = [ta.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b)]
        y = (fn if dtype == "float32" else conv2d_float64)(*ts)
        y.backward(gy.astype(dtype))
        results.append([y.data, ts[0].grad, ts[1].grad])
    return [np.abs(got - want).max() / np.abs(want).max() for want, got in zip(*results)]


def conv2d_float64(x, w, b):
    return F.conv2d(x, w, b, padding=w.shape[2] // 2, algorithm="im2col")


# Real layer shapes (a small batch: the error depends on the channels and the filter, not on N). The
# float32 errors measured (max relative error of y, gx, gW, max over the layers below; im2col's own is
# 2-6e-7): F(2x2, 3x3) 5e-7 .. 7e-7, F(4x4, 3x3) 3e-6 .. 1.1e-5, F(5x5, 3x3) 2.5e-6 .. 1.6e-5 (seeds
# 0-2), F(2x2, 5x5) 3e-6 .. 1.3e-5, F(4x4, 5x5) 5e-6 .. 1.7e-5 (at batch 16-128: 5.3e-6 .. 1.7e-5),
# F(5x5, 5x5) 2.5e-5 .. 5.5e-5 (the four-layer CNN's conv2 at batch 16 and 128: 3.3e-5; F(4x4, 5x5)
# there 5.5e-6, 5.8e-6). The tolerances are about 3x the measured worst.
TOLERANCE = {(2, 3): 2e-6, (4, 3): 3e-5, (5, 3): 5e-5, (2, 5): 4e-5, (4, 5): 5e-5, (5, 5): 1.5e-4}
LAYERS = {  # name: (N, C, O, H, kernel)
    "alexnet conv3 (one column)": (1, 256, 192, 13, 3),
    "vgg conv5": (1, 512, 512, 14, 3),
    "alexnet-cifar conv4 (one column)": (2, 192, 192, 8, 3),
    "alexnet-cifar conv2 (one column)": (1, 48, 128, 16, 5),
    "four-layer cnn conv2": (2, 32, 32, 15, 5),
}


@pytest.mark.parametrize("layer, m", [(layer, m) for layer, shape in LAYERS.items() for m, r in TILES if r == shape[4]])
def test_float32_winograd_stays_within_its_measured_error_on_real_layers(rng, layer, m):
    N, C, O, H, k = LAYERS[layer]
    x, w = rng.standard_normal((N, C, H, H)), rng.standard_normal((O, C, k, k)) * np.sqrt(2 / (C * k * k))
    b, gy = rng.standard_normal(O), rng.standard_normal((N, O, H, H))
    errors = _relative_errors(lambda x, w, b: winograd.Winograd2d((k // 2,) * 2, 1, m)(x, w, b), x, w, b, gy)
    assert max(errors) < TOLERANCE[m, k], dict(zip(("y", "gx", "gW"), errors))


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
def test_the_first_layer_never_computes_the_images_gradient(rng, monkeypatch, algorithm):
    """The images need no gradient: neither col2im's sum nor Winograd's correlation of gy runs for it."""
    calls = []
    for module, name in ((conv, "add_columns"), (winograd, "correlate")):
        def spy(*args, original=getattr(module, name), **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    x = ta.tensor(rng.standard_normal((2, 3, 6, 6)))
    w = ta.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1, algorithm=algorithm)
    calls.clear()  # what forward ran
    y.backward(np.ones(y.shape))
    assert calls == [] and x.grad is None and w.grad is not None


@pytest.mark.parametrize("workers", [1, 2])  # the rule does not depend on the threads
def test_auto_takes_winograd_for_wide_3x3_layers_and_for_5x5_layers_of_32_to_128_channels(workers):
    def chosen(x_shape, w_shape, stride=(1, 1), padding=(1, 1), groups=1):
        return winograd.choose("auto", x_shape, w_shape, stride, padding, groups)
    with threads.workers(workers):
        assert chosen((128, 256, 8, 8), (192, 256, 3, 3)) == 4          # AlexNet-CIFAR conv3, one column
        assert chosen((64, 512, 14, 14), (512, 512, 3, 3)) == 5         # VGG conv5: 9 tiles of 7x7, not 16 of 6x6
        assert chosen((2, 512, 14, 14), (512, 512, 3, 3)) == 5          # one image a thread
        assert chosen((16, 256, 13, 13), (192, 256, 3, 3)) == 5         # AlexNet conv3: 169 of 225
        assert chosen((16, 256, 28, 28), (256, 256, 3, 3)) == 4         # a tie (7^2 36 = 6^2 49): the smaller tile
        assert chosen((16, 256, 6, 6), (256, 256, 3, 3)) is None        # 36 of 64
        assert chosen((64, 384, 8, 8), (384, 192, 3, 3), groups=2) == 4
        assert chosen((64, 128, 8, 8), (384, 64, 3, 3), groups=2) is None  # 64 input channels per group
        assert chosen((64, 3, 224, 224), (64, 3, 3, 3)) is None          # VGG conv1
        assert chosen((128, 256, 8, 8), (192, 256, 3, 3), stride=(2, 2)) is None
        five = dict(padding=(2, 2))
        assert chosen((1, 32, 15, 15), (32, 32, 5, 5), **five) == 5      # four-layer conv2: any batch, 9x9 tiles
        assert chosen((128, 32, 7, 7), (64, 32, 5, 5), **five) == 4      # four-layer conv3: 49 of 64
        assert chosen((128, 48, 16, 16), (128, 48, 5, 5), **five) == 4     # AlexNet-CIFAR conv2, one column
        assert chosen((16, 96, 27, 27), (256, 48, 5, 5), groups=2, **five) == 4  # AlexNet conv2: 9x9 saves 7%
        assert chosen((16, 192, 27, 27), (256, 192, 5, 5), **five) is None  # wider than measured
        assert chosen((128, 3, 32, 32), (32, 3, 5, 5), **five) is None   # four-layer conv1: 3 channels
        assert chosen((128, 32, 5, 5), (32, 32, 5, 5), **five) == 5      # one 9x9 tile: all 25 outputs
        assert chosen((128, 32, 6, 6), (32, 32, 5, 5), **five) is None   # 36 of 64 tile outputs used
    # strided: the space-to-depth's 3x3 filters over C s^2 >= 48 channels, at most one row of zero taps
    assert chosen((16, 3, 227, 227), (96, 3, 11, 11), stride=(4, 4), padding=(0, 0)) == 5  # AlexNet conv1
    assert chosen((16, 3, 224, 224), (64, 3, 11, 11), stride=(4, 4), padding=(2, 2)) == 5  # torchvision's
    assert chosen((128, 48, 16, 16), (128, 48, 5, 5), stride=(2, 2), padding=(2, 2)) == 4
    assert chosen((16, 3, 227, 227), (96, 3, 9, 9), stride=(4, 4), padding=(0, 0)) is None  # 12x12: 3 rows of zeros
    assert chosen((128, 8, 16, 16), (128, 8, 5, 5), stride=(2, 2), padding=(2, 2)) is None  # 32 channels
    assert chosen((128, 48, 16, 16), (128, 48, 5, 5), stride=(2, 1), padding=(2, 2)) is None


def test_the_tile_side_is_the_one_of_fewest_tile_products_unless_the_larger_saves_little():
    """alpha^2 ceil(OH/m) ceil(OW/m) products per pair of channels: 13x13 maps take 9 tiles of 7x7
    (441) over 16 of 6x6 (576); 8x8 maps 4 of 6x6 (144) over 4 of 7x7 (196); for 5x5 filters 15x15
    maps 9 tiles of 9x9 (729) over 16 of 8x8 (1024), 7x7 maps 4 of 8x8 (256) over 4 of 9x9 (324).
    A larger tile that saves at most LARGER_TILE_SAVING is not taken: 27x27 maps stay on 49 tiles
    of 8x8 (3,136) against 36 of 9x9 (2,916, 7% fewer), 112x112 on 6x6 (8%); 224x224 take 7x7 (12%)."""
    assert conv_algorithm.LARGER_TILE_SAVING == 0.1
    assert [winograd.tile_side(3, n, n) for n in (13, 14, 8, 4, 224, 112, 56)] == [5, 5, 4, 4, 5, 4, 4]
    assert winograd.tile_side(3, 13, 8) == 4  # 3 x 2 tiles of 7x7 (294) against 4 x 2 of 6x6 (288)
    assert [winograd.tile_side(5, n, n) for n in (15, 7, 27, 16)] == [5, 4, 4, 4]


def test_conv2d_auto_gives_im2cols_results(rng):
    for x_shape, w_shape in (((1, 32, 8, 8), (32, 32, 5, 5)), ((32, 128, 4, 4), (128, 128, 3, 3))):
        x, w, b = _tensors(rng, x_shape, w_shape)
        P = w_shape[2] // 2
        with threads.workers(1):
            assert winograd.choose("auto", x.shape, w.shape, (1, 1), (P, P), 1) == 4
            np.testing.assert_allclose(F.conv2d(x, w, b, padding=P).data,
                                       F.conv2d(x, w, b, padding=P, algorithm="im2col").data, atol=1e-10)


def test_nn_conv2d_passes_its_algorithm_on_and_traces_see_a_convolution(rng):
    layer = nn.Conv2d(3, 4, 3, padding=1, algorithm="winograd")
    assert "algorithm='winograd'" in repr(layer)
    y = layer(ta.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True))
    assert type(y.creator) is winograd.Winograd2d
    assert (y.creator.label, y.creator.algorithm, y.creator.stride) == ("Conv2d", "winograd", (1, 1))


@pytest.mark.parametrize("change, match", [
    (dict(algorithm="fft"), r"conv2d: algorithm must be one of 'auto', 'im2col', 'winograd', got 'fft'"),
    (dict(stride=2), r"conv2d: algorithm='winograd' needs equal strides .* got stride \(2, 2\) and a 3x3 filter"),
    (dict(stride=(2, 1), w=np.zeros((4, 3, 5, 5))), r"needs equal strides .* got stride \(2, 1\)"),
    (dict(w=np.zeros((4, 3, 1, 1))), r"rounded up, is 3 or 5, got stride \(1, 1\) and a 1x1 filter"),
    (dict(w=np.zeros((4, 3, 3, 5))), r"got stride \(1, 1\) and a 3x5 filter"),
])
def test_conv2d_bad_algorithms(change, match):
    args = dict(x=np.zeros((1, 3, 8, 8)), w=np.zeros((4, 3, 3, 3)), stride=1, algorithm="winograd") | change
    with pytest.raises(ValueError, match=match):
        F.conv2d(ta.tensor(args.pop("x")), ta.tensor(args.pop("w")), **args)


def test_nn_conv2d_refuses_an_unknown_algorithm():
    with pytest.raises(ValueError, match="Conv2d: algorithm must be one of 'auto', 'im2col', 'winograd', got 'direct'"):
        nn.Conv2d(3, 4, 3, algorithm="direct")


@pytest.mark.parametrize("m, r", TILES)
def test_winograd_same_on_cpu_and_device(rng, device, m, r):
    """Every tile size, with groups and remainder tiles: the device's float32 results are the CPU's
    within the tile's float32 tolerance (relative to the largest value)."""
    x, w, b = _tensors(rng, (2, 4, 11, 10), (6, 2, r, r), "float32")
    layer = lambda x, w, b: winograd.Winograd2d((r // 2, r // 2), 2, m)(x, w, b)  # noqa: E731
    y = layer(x, w, b)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    xd, wd, bd = (ta.tensor(t.data, device=device, requires_grad=True) for t in (x, w, b))
    yd = layer(xd, wd, bd)
    yd.backward(ta.tensor(gy, device=device))
    for got, want in ((yd.data, y.data), (xd.grad, x.grad), (wd.grad, w.grad), (bd.grad, b.grad)):
        assert np.abs(ta.backend.to_numpy(got) - want).max() <= TOLERANCE[m, r] * np.abs(want).max()


@pytest.mark.parametrize("images_per_chunk", [1, 2])
@pytest.mark.parametrize("need_gx", [True, False])
def test_winograd_in_chunks_of_images_matches_the_loop_reference(rng, monkeypatch, images_per_chunk, need_gx):
    """On the CPU each part goes through the algorithm a few images at a time (CPU_CHUNK_BYTES): chunks
    of 1 and of at most 2 images (5 images in 3 chunks), with groups and remainder tiles, give the loop
    reference's results, and the kept tiles of all chunks are one array."""
    (N, C, H, W), (O, Cg, r, _), padding, groups, m = (5, 4, 7, 6), (6, 2, 3, 3), (1, 1), 2, 2
    tiles = -(-(H + 2 - r + 1) // m) * -(-(W + 2 - r + 1) // m)
    monkeypatch.setattr(winograd, "CPU_CHUNK_BYTES", images_per_chunk * (m + r - 1) ** 2 * (C + O) * tiles * 8)
    x, w, b = _tensors(rng, (N, C, H, W), (O, Cg, r, r))
    x.requires_grad = need_gx
    y = winograd.Winograd2d(padding, groups, m)(x, w, b)
    (chunks, Vs), = y.creator.saved.parts
    sizes = [c.stop - c.start for c in chunks]
    assert sum(sizes) == N and len(sizes) == -(-N // images_per_chunk) and max(sizes) - min(sizes) <= 1
    assert all(V.base is Vs[0].base is not None for V in Vs)
    np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, b.data, 1, padding, groups), atol=1e-11)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    want = conv2d_backward_reference(x.data, w.data, gy, 1, padding, groups)
    for got, want in zip((x.grad, w.grad, b.grad), want):
        if got is not None or need_gx:
            np.testing.assert_allclose(got, want, atol=1e-11)
    assert (x.grad is None) != need_gx


def test_winograd_chunks_hold_the_filters_transform_and_a_gpu_takes_its_part_whole(monkeypatch):
    """A chunk's tiles and products fit CPU_CHUNK_BYTES unless they would hold fewer values than the
    filters' transform U, which every chunk's products read: then as many images as outweigh U."""
    alexnet_conv2 = np.zeros((8, 96, 27, 27), np.float32), np.zeros((256, 48, 5, 5), np.float32)
    alexnet_conv3 = np.zeros((8, 256, 13, 13), np.float32), np.zeros((384, 256, 3, 3), np.float32)
    x, w = np.zeros((64, 96, 16, 16), np.float32), np.zeros((256, 48, 5, 5), np.float32)  # AlexNet-CIFAR conv2
    conv2, conv3 = winograd.Winograd2d((2, 2), 2, 4), winograd.Winograd2d((1, 1), 1, 5)
    # 49 tiles of 8x8 an image: 64 * 352 * 49 values of tiles and products (4.4 MB) outweigh U's 64 * 256 * 48
    assert conv2.chunks(*alexnet_conv2, slice(0, 8))[0] == [slice(i, i + 1) for i in range(8)]
    # 9 tiles of 7x7 an image, 49 * 640 * 9 values each, against U's 49 * 384 * 256: all 8 images at once
    assert conv3.chunks(*alexnet_conv3, slice(0, 8))[0] == [slice(0, 8)]
    chunks, per_image = conv2.chunks(x, w, slice(0, 64))
    # 16 tiles an image, 64 * 352 * 16 values (1.4 MB): 2 images fit 4 MB, U's 786,432 values take 3
    assert per_image == 64 * 96 * 16 and len(chunks) == 22 and max(c.stop - c.start for c in chunks) == 3
    monkeypatch.setattr(backend, "is_gpu_array", lambda a: True)
    assert conv2.chunks(x, w, slice(0, 64))[0] == [slice(0, 64)]
