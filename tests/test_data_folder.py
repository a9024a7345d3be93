"""ImageFolder: root/<class>/<image> with sorted class names, Pillow decoding, corrupt files named."""
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyalex import data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def make_folder(root, classes=("dog", "cat", "ant"), per_class=2, size=(8, 6)):
    """PNG images whose red channel encodes (class position, image number); returns root."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.zeros((*size, 3), np.uint8)
            image[..., 0], image[..., 1] = 10 * c + i, 7
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def test_classes_sorted_and_images_decoded_as_rgb_hwc(tmp_path):
    ds = data.ImageFolder(make_folder(tmp_path / "f"))
    assert ds.classes == ["ant", "cat", "dog"] and len(ds) == 6
    image, label = ds[5]
    assert image.shape == (8, 6, 3) and image.dtype == np.uint8 and label == 2
    assert image[0, 0, 0] == 10 * 0 + 1  # "dog" was written first, file 1
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 2, 2])
    images, labels = ds.images_labels()
    assert images.shape == (6, 8, 6, 3)


def test_greyscale_and_jpeg_files_become_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((5, 5), 200, np.uint8), "L").save(tmp_path / "a" / "g.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image; ignored by its extension")
    ds = data.ImageFolder(tmp_path)
    assert len(ds) == 1 and ds[0][0].shape == (5, 5, 3)


def test_a_corrupt_file_is_named(tmp_path):
    root = make_folder(tmp_path / "f")
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    ds = data.ImageFolder(root)
    bad = [i for i, (f, _) in enumerate(ds.files) if f.name == "broken.jpg"][0]
    with pytest.raises(ValueError, match=r"cannot decode .*cat.broken\.jpg"):
        ds[bad]


def test_skip_bad_leaves_corrupt_files_out_with_a_warning(tmp_path):
    root = make_folder(tmp_path / "f")
    (root / "cat" / "broken.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"skipped 1 file.*broken\.png"):
        ds = data.ImageFolder(root, skip_bad=True, cache=True)
    assert len(ds) == 6 and all(ds[i][0].shape == (8, 6, 3) for i in range(6))


def test_cache_keeps_decoded_images(tmp_path):
    root = make_folder(tmp_path / "f")
    ds = data.ImageFolder(root, cache=True)
    first = ds[0][0]
    (root / "ant" / "0.png").unlink()
    assert ds[0][0] is first


def test_empty_or_missing_folders_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        data.ImageFolder(tmp_path / "nothing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="found no images"):
        data.ImageFolder(tmp_path / "empty")


def test_images_of_different_sizes_do_not_stack(tmp_path):
    root = make_folder(tmp_path / "f", per_class=1)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(root / "ant" / "small.png")
    with pytest.raises(ValueError, match="differ in size"):
        data.ImageFolder(root).images_labels()


def test_load_reads_train_and_test_folders_and_archives(tmp_path, monkeypatch):
    make_folder(tmp_path / "set" / "train")
    make_folder(tmp_path / "set" / "test", per_class=1)
    assert len(data.load(tmp_path / "set")) == 6 and len(data.load(tmp_path / "set", train=False)) == 3
    with tarfile.open(tmp_path / "set.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "set", arcname="set")
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "cache"))
    assert len(data.load(tmp_path / "set.tar.gz", train=False)) == 3
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        data.load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="do not know how to read"):
        data.load(tmp_path / "set" / "train")


def test_a_test_split_is_labelled_by_the_training_splits_classes(tmp_path):
    make_folder(tmp_path / "set" / "train")  # ant, cat, dog
    make_folder(tmp_path / "set" / "test", classes=("dog",))  # its only class was label 0 on its own
    test = data.load(tmp_path / "set", train=False)
    assert test.classes == ["ant", "cat", "dog"] and test.labels.tolist() == [2, 2]
    make_folder(tmp_path / "set" / "test", classes=("eel",))  # which output would an eel be?
    with pytest.raises(ValueError, match="class folders that are not among the classes given.*: eel"):
        data.load(tmp_path / "set", train=False)


def test_16_bit_grey_is_scaled_to_8_bits_not_clipped(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16)).save(tmp_path / "a" / "deep.png")
    assert Image.open(tmp_path / "a" / "deep.png").mode == "I;16"
    np.testing.assert_array_equal(data.ImageFolder(tmp_path)[0][0], np.repeat([[[0], [100], [255]]], 3, axis=2))
    Image.fromarray(np.ones((2, 2), np.float32)).save(tmp_path / "a" / "float.tif")
    with pytest.raises(ValueError, match=r"float\.tif: its pixels are floating-point"):
        data.folder.decode(tmp_path / "a" / "float.tif")


@pytest.mark.shared
@pytest.mark.slow  # reads through the whole 20 MB archive
@pytest.mark.skipif(not SHARED.is_file(), reason=f"the development CIFAR-10 JPEG copy is absent ({SHARED.name})")
def test_real_cifar10_jpegs(tmp_path):
    with tarfile.open(SHARED) as tar:
        members = [m for m in tar if m.isfile() and m.name.count("/") >= 2 and "/test/" in f"/{m.name}"
                   and m.name.rsplit("/", 1)[1] in ("0000.jpg", "0001.jpg")]
        tar.extractall(tmp_path, members=members, filter="data")
    test = next(tmp_path.rglob("test"))
    ds = data.ImageFolder(test)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"] and len(ds) == 20
    image, label = ds[19]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and label == 9
