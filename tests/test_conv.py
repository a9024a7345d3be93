"""Convolution: conv2d matches the loop reference, its gradients check, its bad inputs are refused."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import backend
from tinyalex import functional as F
from tinyalex.functional import conv
from tinyalex.functional.im2col import row_shifts, shared_rows
from tinyalex.functional.reference import conv2d_backward_reference, conv2d_reference

from conftest import OpCase, op_tests

# (x shape, weight shape, stride, padding, groups): overlap, padding, groups, odd and rectangular sizes
CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0, 1),
    ((2, 3, 9, 9), (4, 3, 3, 3), 2, 1, 1),          # stride < kernel: overlapping windows
    ((1, 3, 11, 11), (5, 3, 5, 5), 3, 2, 1),        # batch 1, odd sizes
    ((2, 4, 8, 9), (6, 2, 3, 2), 2, 1, 2),          # two groups (the paper's two GPUs), rectangular kernel
    ((3, 6, 6, 5), (4, 3, 2, 3), (2, 1), (0, 2), 2),  # per-axis stride and padding
    ((2, 2, 5, 5), (3, 2, 5, 5), 1, 0, 1),          # kernel as large as the input: 1x1 output
]


def _tensors(rng, x_shape, w_shape, dtype="float64"):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    return [ta.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b)]


# columns of at most this many values are built with the images first: every case's, or none's
# (a stride along the rows always takes the images first)
LAYOUTS = {"images first": 1 << 30, "images last": 0}


@pytest.fixture(params=list(LAYOUTS))
def layout(request, monkeypatch):
    monkeypatch.setattr(conv, "IMAGES_FIRST_VALUES", LAYOUTS[request.param])
    return request.param


@pytest.fixture
def lowered(monkeypatch):
    """The images of each chunk that forward lowers into shared rows, in order."""
    images = []
    monkeypatch.setattr(conv, "shared_rows", lambda xc, *args: images.append(len(xc)) or shared_rows(xc, *args))
    return images


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CASES)
def test_conv2d_forward_and_backward_match_the_loop_reference(rng, layout, x_shape, w_shape, stride, padding, groups):
    _check_against_reference(rng, x_shape, w_shape, stride, padding, groups)


@pytest.mark.parametrize("images_per_chunk", [1, 2])
@pytest.mark.parametrize("stride", [(2, 1), (2, 2)])  # (2, 2): a stride along each row, the images first
def test_conv2d_in_chunks_of_images_matches_the_loop_reference(rng, monkeypatch, lowered, layout, images_per_chunk, stride):
    """On the CPU forward's shared rows (conv.ROWS_CHUNK_BYTES) and backward's columns
    (conv.CPU_CHUNK_BYTES) are built a few images at a time: chunks of 1 and of 2 images (the last
    one smaller), with groups and overlap, give the whole-batch results."""
    (N, C, H, W), (O, Cg, KH, KW), padding = (5, 4, 8, 9), (6, 2, 3, 2), 1
    OH, OW = F.conv_outsize(H, KH, stride[0], padding), F.conv_outsize(W, KW, stride[1], padding)
    monkeypatch.setattr(conv, "CPU_CHUNK_BYTES", images_per_chunk * C * KH * KW * OH * OW * 8)
    monkeypatch.setattr(conv, "ROWS_CHUNK_BYTES", images_per_chunk * (C * (H + 2 * padding) * KW + O * OH) * OW * 8)
    monkeypatch.setattr(conv, "MIN_ROW_COLUMNS", 1)
    _check_against_reference(rng, (N, C, H, W), (O, Cg, KH, KW), stride, padding, 2)
    assert lowered == [images_per_chunk] * (N // images_per_chunk) + [N % images_per_chunk] * (N % images_per_chunk > 0)


@pytest.mark.parametrize("x_shape, w_shape, stride, first", [
    ((2, 3, 32, 32), (32, 3, 5, 5), 1, True),       # the four-layer CNN's conv1: 75 values a column
    ((2, 32, 15, 15), (32, 32, 5, 5), 1, False),    # its conv2: 800
    ((1, 96, 16, 16), (256, 48, 5, 5), 1, False),   # AlexNet-CIFAR's conv2, 2 groups: 1200
    ((1, 3, 35, 35), (96, 3, 11, 11), 4, True),     # AlexNet's conv1 at stride 4
])
def test_short_columns_and_strided_rows_take_the_images_first(x_shape, w_shape, stride, first):
    w = ta.tensor(np.zeros(w_shape, np.float32), requires_grad=True)
    y = F.conv2d(np.zeros(x_shape, np.float32), w, stride=stride, groups=x_shape[1] // w_shape[1], algorithm="im2col")
    assert y.creator.images_first == first


def test_a_gpu_takes_as_many_images_as_its_chunk_bytes_hold(monkeypatch):
    # whole batches of AlexNet fit; VGG's first layers at 224 would need ~15 GB of columns at once
    x = np.zeros((10, 3, 4, 4), np.float32)  # 3 channels x 9 values per channel x 4 bytes per image
    monkeypatch.setattr(backend, "is_gpu_array", lambda a: True)
    monkeypatch.setattr(conv, "GPU_CHUNK_BYTES", 4 * 3 * 9 * 4)
    assert conv.Conv2d.chunks(x, slice(None), 3 * 9) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    monkeypatch.setattr(conv, "GPU_CHUNK_BYTES", 1 << 30)
    assert conv.Conv2d.chunks(x, slice(None), 3 * 9) == [slice(0, 10)]


def _check_against_reference(rng, x_shape, w_shape, stride, padding, groups, image_grad=True):
    x, w, b = _tensors(rng, x_shape, w_shape)
    x.requires_grad = image_grad
    y = F.conv2d(x, w, b, stride, padding, groups)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x.data, w.data, b.data, stride, padding, groups),
                               rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    for got, want in zip((x.grad, w.grad, b.grad),
                         conv2d_backward_reference(x.data, w.data, gy, stride, padding, groups)):
        if got is not None or image_grad:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups",
                         CASES + [((3, 4, 8, 9), (6, 2, 3, 2), (1, 2), 1, 2)])  # groups, a stride along the width only
@pytest.mark.parametrize("images_per_chunk", [1, 2])
def test_the_first_layers_weight_gradient_from_the_row_shifts_matches_the_loop_reference(
        rng, monkeypatch, x_shape, w_shape, stride, padding, groups, images_per_chunk):
    """With no image gradient to give (the paper's first layer), short columns and a stride of 1 along
    the rows, gW comes from the KW shifted copies of the input rows, KH GEMMs an image and block of
    output rows: in chunks of 1 and 2 images, blocks of 2 rows and a shorter last one, with groups,
    padding and strides along the width, the loop reference's gradients."""
    (N, C, H, W), KW, (SH, SW), (PH, PW) = x_shape, w_shape[3], np.broadcast_to(stride, 2), np.broadcast_to(padding, 2)
    OW = F.conv_outsize(W, KW, SW, PW)
    shifted = []
    monkeypatch.setattr(conv, "row_shifts", lambda xc, *args: shifted.append(len(xc)) or row_shifts(xc, *args))
    monkeypatch.setattr(conv, "CPU_CHUNK_BYTES", images_per_chunk * C * KW * (H + 2 * PH) * OW * 8)
    monkeypatch.setattr(conv, "SHIFT_PIXELS", 2 * OW)
    _check_against_reference(rng, x_shape, w_shape, stride, padding, groups, image_grad=False)
    chunks = [images_per_chunk] * (N // images_per_chunk) + [N % images_per_chunk] * (N % images_per_chunk > 0)
    assert shifted == (chunks if SH == 1 else [])


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CASES[1:5])
def test_conv2d_gradcheck(rng, x_shape, w_shape, stride, padding, groups):
    assert ta.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, groups), *_tensors(rng, x_shape, w_shape))


def test_conv2d_without_bias_and_in_float32(rng):
    x, w, _ = _tensors(rng, (2, 3, 6, 6), (4, 3, 3, 3), "float32")
    y = F.conv2d(x, w, padding=1)
    assert y.dtype == np.float32 and y.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x.data, w.data, padding=1), rtol=1e-5, atol=1e-5)
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == w.grad.dtype == np.float32


def test_conv2d_first_layer_of_the_paper_gives_55x55():
    x, w = ta.tensor(np.zeros((1, 3, 227, 227))), ta.tensor(np.zeros((96, 3, 11, 11)))
    assert F.conv2d(x, w, stride=4).shape == (1, 96, 55, 55)


def _bad(**change):
    args = dict(x=np.zeros((2, 4, 8, 8)), w=np.zeros((6, 2, 3, 3)), b=np.zeros(6), stride=1, padding=0, groups=2)
    args.update(change)
    return {k: ta.tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}


# each message names the op, what it expected and what it got
@pytest.mark.parametrize("change, error, match", [
    (dict(x=np.zeros((4, 8, 8))), ValueError, r"4-D input \(N, C, H, W\), got shape \(4, 8, 8\)"),
    (dict(w=np.zeros((6, 2, 3))), ValueError, r"4-D weight \(O, C/groups, KH, KW\), got shape \(6, 2, 3\)"),
    (dict(x=np.zeros((2, 6, 8, 8))), ValueError, r"expects 4 input channels .* but the input has 6"),
    (dict(x=np.zeros((2, 5, 8, 8)), w=np.zeros((6, 1, 3, 3)), groups=5), ValueError,
     r"input channels \(5\) and output channels \(6\) must both be divisible by groups=5"),
    (dict(w=np.zeros((5, 2, 3, 3)), b=np.zeros(5)), ValueError,
     r"input channels \(4\) and output channels \(5\) must both be divisible by groups=2"),
    (dict(groups=0), ValueError, "groups must be a positive int, got 0"),
    (dict(groups=True), ValueError, "groups must be a positive int, got True"),  # as the layer refuses it
    (dict(w=np.zeros((6, 2, 9, 9))), ValueError, r"kernel size 9 is larger than the padded input \(8 \+ 2\*0 = 8\)"),
    (dict(stride=0), ValueError, "stride must be positive, got 0"),
    (dict(padding=-1), ValueError, "padding must not be negative, got -1"),
    (dict(b=np.zeros(5)), ValueError, r"bias must have shape \(6,\), got \(5,\)"),
    (dict(x=np.zeros((2, 4, 8, 8), np.int64)), TypeError, "float32 or float64 tensor, got int64"),
    (dict(x=np.zeros((2, 4, 8, 8), np.float16)), TypeError, "float32 or float64 tensor, got float16"),
    (dict(x=np.zeros((2, 4, 8, 8), np.float32)), TypeError, "share one dtype, got float32, float64, float64"),
])
def test_conv2d_bad_inputs(change, error, match):
    with pytest.raises(error, match=f"conv2d: .*{match}"):
        F.conv2d(**_bad(**change))


@pytest.mark.gpu
def test_conv2d_inputs_on_different_devices():
    args = _bad()
    args["w"] = args["w"].to("cuda")
    with pytest.raises(ValueError, match="conv2d: inputs are on different devices"):
        F.conv2d(**args)


test_conv2d_declared = op_tests(OpCase(
    "grouped-strided-padded", lambda x, w, b: F.conv2d(x, w, b, 2, 1, 2),
    lambda rng: [rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)],
    reference=lambda x, w, b: conv2d_reference(x, w, b, 2, 1, 2), atol=1e-5))


@pytest.mark.parametrize("needs", [(False, True, True), (True, False, False)])
def test_conv2d_computes_only_the_gradients_asked_for(rng, needs):
    """The paper's first layer needs no gradient for the images; a frozen network none for its weights."""
    x, w, b = (ta.tensor(t.data, requires_grad=r) for t, r in zip(_tensors(rng, (2, 3, 6, 6), (4, 3, 3, 3)), needs))
    y = F.conv2d(x, w, b, 2, 1)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    for t, want in zip((x, w, b), conv2d_backward_reference(x.data, w.data, gy, 2, 1)):
        if t.requires_grad:
            np.testing.assert_allclose(t.grad, want, rtol=1e-12, atol=1e-12)
        else:
            assert t.grad is None


@pytest.mark.torch
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CASES)
def test_conv2d_agrees_with_pytorch(rng, x_shape, w_shape, stride, padding, groups):
    torch = pytest.importorskip("torch")
    x, w, b = _tensors(rng, x_shape, w_shape)
    y = F.conv2d(x, w, b, stride, padding, groups)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, groups=groups)
    ty.backward(torch.tensor(gy))
    for ours, theirs in ((y.data, ty), (x.grad, tx.grad), (w.grad, tw.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_col2im_and_the_conv_backward_give_the_same_bits_on_every_run(rng, device):
    """Overlapping windows are summed one kernel offset at a time, never by atomic adds in whatever order
    the threads finish: a GPU run repeats bit for bit (AlexNet's 3x3/2 and 11x11/4 windows overlap)."""
    col = ta.tensor(rng.standard_normal((3 * 3 * 3, 4 * 6 * 6)), dtype="float32", device=device).data
    x = ta.tensor(rng.standard_normal((4, 3, 13, 13)), dtype="float32", device=device, requires_grad=True)
    w = ta.tensor(rng.standard_normal((8, 3, 3, 3)), dtype="float32", device=device)
    gy = ta.tensor(rng.standard_normal((4, 8, 6, 6)), dtype="float32", device=device)
    runs = []
    for _ in range(3):
        x.grad = None
        F.conv2d(x, w, stride=2).backward(gy)
        runs.append((backend.to_numpy(F.col2im(col, x.shape, 3, 3, 2, 2, 0, 0)), backend.to_numpy(x.grad)))
    for later in runs[1:]:
        for a, b in zip(runs[0], later):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_forwards_chunks_give_each_gemm_128_columns_at_least(lowered):
    """AlexNet's conv1 has 2.8 MB of shared rows and products an image, more than ROWS_CHUNK_BYTES, but
    only 55 columns (OW) an image: a chunk takes 3 images, 165 columns, not one."""
    F.conv2d(np.zeros((7, 3, 227, 227), np.float32), np.zeros((96, 3, 11, 11), np.float32), stride=4, algorithm="im2col")
    assert sum(lowered) == 7 and max(lowered) == 3
