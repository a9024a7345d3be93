"""The papers' transforms: shapes, value ranges, determinism, true mirrors, the 10 views, PCA colour."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import data
from tinyalex import backend
from tinyalex.data import transforms as T


def images(n=4, h=8, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_to_float_gives_chw_on_unit_scale():
    x = images(1)[0]
    y = T.ToFloat()(x)
    assert y.shape == (3, 8, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y, x.transpose(2, 0, 1) / 255, rtol=1e-6)
    assert T.ToFloat().batch(images(2)).shape == (2, 3, 8, 10)


def test_random_crop_cuts_real_windows_and_repeats_under_a_seed():
    x = images(6)
    y = T.RandomCrop(5).batch(x, rng(1))
    assert y.shape == (6, 5, 5, 3) and y.dtype == np.uint8
    for n in range(6):  # every crop is some 5x5 window of its own image
        assert any(np.array_equal(y[n], x[n, t:t + 5, l:l + 5]) for t in range(4) for l in range(6))
    np.testing.assert_array_equal(y, T.RandomCrop(5).batch(x, rng(1)))
    assert not np.array_equal(y, T.RandomCrop(5).batch(x, rng(2)))


def test_padded_crop_keeps_the_size_and_pads_with_zeros_or_mirrors():
    x = images(50, 4, 4)
    zeros = T.RandomCrop(4, padding=2).batch(x, rng())
    assert zeros.shape == x.shape and (zeros == 0).all(axis=(1, 2, 3)).sum() == 0
    assert (zeros == 0).all(axis=-1).any()  # some padding shows
    reflect = T.RandomCrop(4, padding=2, padding_mode="reflect").batch(x, rng())
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    for n in range(5):
        assert any(np.array_equal(reflect[n], padded[n, t:t + 4, l:l + 4]) for t in range(5) for l in range(5))


def test_flip_really_mirrors_about_half_the_images():
    x = images(400)
    y = T.RandomFlip().batch(x, rng())
    mirrored = np.array([np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x)])
    kept = np.array([np.array_equal(a, b) for a, b in zip(y, x)])
    assert (mirrored ^ kept).all() and 160 < mirrored.sum() < 240
    np.testing.assert_array_equal(T.RandomFlip(p=1)(x[0], rng()), x[0][:, ::-1])


def test_single_image_calls_match_the_batch_code():
    x = images(1)
    t = T.Compose([T.RandomCrop(6, padding=1), T.RandomFlip(), T.PCALighting.imagenet(), T.ToFloat()])
    np.testing.assert_array_equal(t(x[0], rng(3)), t.batch(x, rng(3))[0])


def test_ten_crop_is_the_four_corners_the_centre_and_their_mirrors():
    x = images(1, 8, 10)[0]
    v = T.ten_crop(x, 4)
    assert v.shape == (10, 4, 4, 3)
    windows = [x[:4, :4], x[:4, 6:], x[4:, :4], x[4:, 6:], x[2:6, 3:7]]
    for k, w in enumerate(windows):
        np.testing.assert_array_equal(v[k], w)
        np.testing.assert_array_equal(v[k + 5], w[:, ::-1])


def test_ten_crop_of_an_nchw_batch(device):
    x = images(2, 8, 10).transpose(0, 3, 1, 2).astype(np.float32)
    expected = T.ten_crop(x.transpose(0, 2, 3, 1), 4).transpose(0, 1, 4, 2, 3)
    with backend.on_device(device):
        got = T.ten_crop(backend.to_device(x, device), 4, channels_last=False)
    assert got.shape == (10, 2, 3, 4, 4)
    np.testing.assert_array_equal(backend.to_numpy(got), expected)


def test_center_crop_and_resize_shorter_side():
    x = images(1, 20, 30)[0]
    np.testing.assert_array_equal(T.center_crop(x, 10), x[5:15, 10:20])
    y = T.resize_shorter_center_crop(x, 16)
    assert y.shape == (16, 16, 3) and y.dtype == np.uint8
    assert T.resize_shorter(x, 16).shape == (16, 24, 3)
    with pytest.raises(ValueError, match="center_crop: cannot cut a 21x21 patch from a 20x30"):
        T.center_crop(x, 21)


def test_scale_jitter_draws_the_shorter_side_in_range_and_multi_scale_gives_each_q():
    x = images(1, 20, 30)[0]
    sides = {min(T.ScaleJitter(16, 24)(x, rng(s)).shape[:2]) for s in range(30)}
    assert sides <= set(range(16, 25)) and len(sides) > 4
    assert [min(v.shape[:2]) for v in T.multi_scale(x, Q=(12, 20, 28))] == [12, 20, 28]


def test_mean_subtract_per_pixel_and_per_channel_on_unit_scale(tmp_path):
    x = images(10)
    per_pixel = T.MeanSubtract.fit(x)
    np.testing.assert_allclose(per_pixel.mean, x.mean(axis=0) / 255, rtol=1e-6)
    np.testing.assert_allclose(per_pixel.batch(x).mean(axis=0), 0, atol=1e-6)
    per_channel = T.MeanSubtract.fit(x, per_pixel=False, cache=tmp_path / "mean.npy")
    np.testing.assert_allclose(per_channel.mean, x.reshape(-1, 3).mean(axis=0) / 255, rtol=1e-6)
    again = T.MeanSubtract.fit(np.zeros_like(x), per_pixel=False, cache=tmp_path / "mean.npy")
    np.testing.assert_array_equal(again.mean, per_channel.mean)  # read back, not recomputed
    with pytest.raises(ValueError, match="mean image is"):
        per_pixel.batch(images(2, 4, 4))


def test_pca_fit_finds_the_rgb_covariance_eigenpairs():
    x = images(20)
    p = T.PCALighting.fit(x)
    cov = np.cov((x.reshape(-1, 3) / 255).T, bias=True)
    np.testing.assert_allclose(cov @ p.eigvecs, p.eigvecs * p.eigvals, atol=1e-6)
    assert (np.diff(p.eigvals) <= 0).all()


def test_pca_lighting_adds_one_colour_in_the_eigenvector_span_with_the_stated_scale():
    p = T.PCALighting.imagenet()
    x = images(2000, 2, 2)
    shift = p.batch(x, rng()) - x / 255          # the added colour, pixels on [0, 1]
    assert np.allclose(shift, shift[:, :1, :1], atol=1e-6)   # one colour per image
    coef = shift[:, 0, 0] @ p.eigvecs                         # = alpha_i * lambda_i, eigvecs orthonormal
    np.testing.assert_allclose(shift[:, 0, 0], coef @ p.eigvecs.T, atol=1e-5)
    alpha = coef / p.eigvals
    np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.1)  # alpha ~ N(0, 0.1)
    assert np.abs(shift).max() < 0.2  # [0, 1] scale: at most a few tenths of the range
    np.testing.assert_array_equal(p.batch(x, rng(5)), p.batch(x, rng(5)))


def test_without_rng_the_engine_seed_decides():
    t, x = T.Compose([T.RandomCrop(5), T.RandomFlip(), T.PCALighting.imagenet()]), images(8)
    ta.manual_seed(4)
    first = t.batch(x)
    ta.manual_seed(4)
    np.testing.assert_array_equal(first, t.batch(x))


def test_compose_batch_refuses_a_per_image_step():
    with pytest.raises(TypeError, match="ScaleJitter"):
        T.Compose([T.ScaleJitter(8, 9), T.ToFloat()]).batch(images(1))


def test_a_per_image_step_inside_a_nested_compose_makes_the_loader_go_image_by_image():
    jitter = T.Compose([T.Compose([T.ScaleJitter(8, 12), T.RandomCrop(8)]), T.ToFloat()])
    assert not jitter.batchable and T.takes_batches(T.Compose([T.RandomCrop(5)]))
    loader = data.DataLoader(data.memory.Arrays(images(6), np.arange(6) % 2, ["a", "b"]), 3, transform=jitter)
    assert [x.shape for x, _ in loader] == [(3, 3, 8, 8)] * 2


@pytest.mark.parametrize("make, message", [
    (lambda: T.RandomFlip(p=2), "RandomFlip: p must be in"),
    (lambda: T.RandomCrop(4, padding_mode="wrap"), "padding_mode"),
    (lambda: T.ScaleJitter(10, 5), "smin <= smax"),
    (lambda: T.PCALighting([1, 2], np.eye(3)), "eigvals"),
])
def test_bad_arguments_name_the_transform(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_paper_pixel_scale_is_raw_values_minus_the_mean_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    paper = data.pipeline.preprocess(images, pixels="paper", mean="image").batch(images)
    np.testing.assert_allclose(paper, images - images.mean(axis=0), atol=1e-3)
    unit = data.pipeline.preprocess(images, pixels="unit", mean="colour").batch(images)
    np.testing.assert_allclose(unit, images / 255 - (images / 255).mean(axis=(0, 1, 2)), atol=1e-6)
    raw = data.pipeline.preprocess(images, pixels="paper", mean=None).batch(images)
    np.testing.assert_array_equal(raw, images.astype(np.float32))


@pytest.mark.parametrize("option, value", [("pixels", "bytes"), ("mean", "median")])
def test_an_unknown_pipeline_option_is_named(option, value):
    with pytest.raises(ValueError, match=f"preprocess: {option} must be .* got '{value}'"):
        data.pipeline.preprocess(np.zeros((1, 2, 2, 3), np.uint8), **{option: value})
