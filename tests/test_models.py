"""The papers' networks: parameter counts, the two columns = the grouped form, devices, dense VGG."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex import models, nn, optim
from tinyalex.models.alexnet import TORCHVISION_NAMES


def images(shape, seed=0, dtype=np.float32, requires_grad=False):
    return ta.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


# ------------------------------------------------------------------ parameter counts
def test_the_paper_network_has_60_965_224_parameters_in_both_forms():
    assert models.alexnet(init=None).num_parameters() == 60_965_224
    assert models.alexnet(columns=1, init=None).num_parameters() == 60_965_224


def test_the_torchvision_layout_has_61_100_840_parameters():
    assert models.alexnet_torchvision(init=None).num_parameters() == 61_100_840


@pytest.mark.parametrize("config, count", [("A", 132_863_336), ("A-LRN", 132_863_336), ("B", 133_047_848),
                                           ("C", 133_638_952), ("D", 138_357_544), ("E", 143_667_240)])
def test_vgg_parameter_counts_round_to_table_2(config, count):
    n = models.vgg(config, init=None).num_parameters()
    assert n == count
    assert round(n / 1e6) == {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}[config]


def test_alexnet_cifar_is_the_paper_sequence_at_32x32():
    model = models.alexnet_cifar(init=None)
    assert model.num_parameters() == 7_561_610
    column = model.columns[0]
    assert [n for n in column.names() if n.startswith(("conv", "lrn", "pool", "fc", "drop"))] == [
        "conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4", "conv5", "pool5",
        "fc6", "drop6", "fc7", "drop7", "fc8"]
    assert column.fc6.in_features == 256 * 4 * 4 and column.fc6.out_features == 512
    assert models.alexnet_cifar(columns=1).eval()(images((2, 3, 32, 32))).shape == (2, 10)


def test_alexnet_cifar_norm_choices():
    bn = models.alexnet_cifar(columns=1, norm="batchnorm", init=None, width=0.25)
    assert bn.conv1.bias is None and isinstance(bn.bn1, nn.BatchNorm2d) and "lrn1" not in bn.names()
    plain = models.alexnet_cifar(columns=1, norm=None, init=None, width=0.25)
    assert not any(isinstance(m, (nn.LRN, nn.BatchNorm2d)) for m in plain.modules())
    with pytest.raises(ValueError, match="norm must be 'lrn', 'batchnorm' or None"):
        models.alexnet_cifar(norm="layernorm")


def test_alexnet_cifar_dropout_is_the_papers_half_unless_told():
    def ps(model):
        return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert ps(models.alexnet_cifar(init=None, width=0.25)) == [0.5] * 4  # fc6, fc7 in each column
    assert ps(models.alexnet_cifar(columns=1, init=None, width=0.25, dropout=0.25)) == [0.25] * 2
    with pytest.raises(ValueError, match="Dropout"):
        models.alexnet_cifar(init=None, width=0.25, dropout=1.0)


# ------------------------------------------------------------------ two columns = grouped form
def column_pair(norm="lrn", seed=0):
    """A narrow AlexNet-CIFAR in both forms with the same weights, in float64 (same code path as the paper's)."""
    ta.manual_seed(seed)
    two = models.alexnet_cifar(width=0.125, norm=norm).to(dtype="float64").eval()
    one = models.alexnet_cifar(width=0.125, norm=norm, columns=1, init=None).to(dtype="float64").eval()
    one.load_state_dict(models.to_grouped_state(two.state_dict()))
    return two, one


@pytest.mark.parametrize("norm", ["lrn", "batchnorm"])
def test_two_columns_and_grouped_form_compute_the_same_function_and_gradients(norm):
    two, one = column_pair(norm)
    outputs, input_grads = [], []
    for model in (two, one):
        x = images((2, 3, 32, 32), dtype=np.float64, requires_grad=True)
        y = model(x)
        F.softmax_cross_entropy(y, np.array([3, 7])).backward()
        outputs.append(y.numpy())
        input_grads.append(x.grad)
    assert np.allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)
    assert np.allclose(input_grads[0], input_grads[1], rtol=1e-10, atol=1e-16)
    grads = models.to_grouped_state({n: p.grad for n, p in two.named_parameters()})
    for name, p in one.named_parameters():
        assert np.allclose(grads[name], p.grad, rtol=1e-10, atol=1e-16), name


@pytest.mark.slow
def test_the_full_paper_network_in_both_forms_agrees_on_an_image():
    ta.manual_seed(0)
    one = models.alexnet(columns=1).eval()
    two = models.alexnet(init=None).eval()
    two.load_state_dict(models.to_columns_state({n: p.data for n, p in one.named_parameters()}))
    x = images((1, 3, 227, 227))
    with ta.no_grad():
        assert np.allclose(two(x).numpy(), one(x).numpy(), rtol=1e-5, atol=1e-6)


def test_state_conversion_between_forms_round_trips():
    two, _ = column_pair()
    state = two.state_dict()
    back = models.to_columns_state(models.to_grouped_state(state))
    assert set(back) == set(state) and all(np.array_equal(back[k], state[k]) for k in state)


def test_paper_init_sets_biases_to_one_where_section_5_says():
    ta.manual_seed(0)
    model = models.alexnet_cifar(init="paper", width=0.25)
    for column in model.columns:
        for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
            expected = 1.0 if layer in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
            assert np.all(getattr(column, layer).bias.numpy() == expected), layer
    assert abs(model.columns[0].fc6.weight.numpy().std() / 0.01 - 1) < 0.05


# ------------------------------------------------------------------ devices and crossings
def test_columns_on_two_devices_exchange_before_conv3_fc6_fc7_fc8():
    model = models.alexnet_cifar(width=0.125, devices=("cpu", "cpu")).eval()
    assert model.devices == ("cpu", "cpu")
    model(images((2, 3, 32, 32)))
    crossings = [(t.before, t.source, t.target) for t in model.transfers]
    assert crossings == [(layer, j, 1 - j) for layer in ("conv3", "fc6", "fc7", "fc8") for j in (1, 0)] + \
        [("output", 1, 0)]
    assert model.transfers[0].shape == (2, 16, 8, 8)  # one column: 16 of the 32 pooled conv2 maps, 8x8


def test_device_arguments_are_checked():
    with pytest.raises(ValueError, match="expected 2 device\\(s\\), one per column"):
        models.alexnet_cifar(width=0.125, devices=("cpu",))
    with pytest.raises(ValueError, match="columns must be 1 or 2"):
        models.alexnet_cifar(columns=3)
    with pytest.raises(ValueError, match="init must be one of"):
        models.alexnet_cifar(init="lecun")


@pytest.mark.parametrize("build, name", [(models.alexnet, "alexnet"), (models.alexnet_torchvision, "alexnet_torchvision"),
                                         (models.vgg, "vgg"), (models.vgg_cifar, "vgg")])
def test_every_builder_refuses_an_unknown_init_by_name_before_building_anything(monkeypatch, build, name):
    def no_layers(*args, **kwargs):
        raise AssertionError("a layer was built before the init name was checked")

    monkeypatch.setattr(nn, "Conv2d", no_layers)
    args = ("A",) if "vgg" in name else ()
    with pytest.raises(ValueError, match=f"^{name}: init must be one of .*, got 'lecun'"):
        build(*args, init="lecun")


@pytest.mark.gpu
@pytest.mark.parametrize("devices", [("cuda", "cpu"), ("cuda", "cuda")])
def test_columns_on_the_gpu_or_split_with_the_cpu_train_like_both_on_the_cpu(devices):
    ta.manual_seed(0)
    cpu = models.alexnet_cifar(width=0.25).eval()
    split = models.alexnet_cifar(width=0.25, devices=devices, init=None).eval()
    split.load_state_dict(cpu.state_dict())
    assert split.devices == tuple(ta.backend.parse_device(d) for d in devices)
    results = []
    for model, device in ((cpu, "cpu"), (split, "cuda")):
        loss = F.softmax_cross_entropy(model(images((4, 3, 32, 32)).to(device)), ta.tensor([1, 2, 3, 4], device=device))
        loss.backward()
        results.append([loss.numpy()] + [ta.backend.to_numpy(p.grad) for p in model.parameters()])
    for a, b in zip(*results):
        assert np.linalg.norm(b - a) <= 1e-5 * np.linalg.norm(a)


# ------------------------------------------------------------------ training
@pytest.mark.slow
def test_a_small_alexnet_memorises_a_tiny_batch():
    ta.manual_seed(0)
    # eval mode keeps dropout off: memorising 8 random images needs no regulariser fighting it
    model = models.alexnet_cifar(width=0.125).eval()
    x, labels = images((8, 3, 32, 32)), np.random.default_rng(1).integers(0, 10, 8)
    opt = optim.SGD(model.parameters(), lr=0.01, weight_decay=0.0)
    for _ in range(40):
        loss = F.softmax_cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert F.softmax_cross_entropy(model(x), labels).item() < 0.01


# ------------------------------------------------------------------ torchvision weights
@pytest.mark.slow
def test_torchvision_weights_load_from_npz_with_key_mapping(tmp_path):
    source = models.alexnet_torchvision(num_classes=4, init=None)
    source.fc8.weight.data[...] = np.arange(4 * 4096).reshape(4, 4096)
    source.conv1.bias.data[...] = np.arange(64)
    torchvision_name = {ours: theirs for theirs, ours in TORCHVISION_NAMES.items()}
    saved = {}
    for name, p in source.named_parameters():
        layer, _, kind = name.rpartition(".")
        saved[f"{torchvision_name[layer]}.{kind}"] = p.data
    np.savez(tmp_path / "alexnet.npz", **saved)
    model = models.load_torchvision_npz(models.alexnet_torchvision(num_classes=4, init=None), tmp_path / "alexnet.npz")
    assert np.array_equal(model.fc8.weight.numpy(), source.fc8.weight.numpy())
    assert np.array_equal(model.conv1.bias.numpy(), saved["features.0.bias"])


def test_torchvision_npz_with_a_foreign_key_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", **{"features.1.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="'features.1.weight', which is not a key of torchvision's AlexNet"):
        models.load_torchvision_npz(models.alexnet_torchvision(init=None), tmp_path / "other.npz")


# ------------------------------------------------------------------ VGG
def test_vgg_configurations_follow_table_1():
    c = models.vgg("C", init=None).features
    assert c.conv3_3.kernel_size == (1, 1) and c.conv3_2.kernel_size == (3, 3) and c.conv5_3.out_channels == 512
    assert isinstance(models.vgg("A-LRN", init=None).features.lrn1, nn.LRN)
    assert sum(isinstance(m, nn.Conv2d) for m in models.vgg("E", init=None).features) == 16
    with pytest.raises(ValueError, match="unknown configuration 'F'"):
        models.vgg("F")


def test_vgg_paper_init_has_variance_one_hundredth():
    ta.manual_seed(0)
    model = models.vgg("A", num_classes=10, width=1 / 16)
    assert abs(model.features.conv5_2.weight.numpy().std() / 0.1 - 1) < 0.05


def test_dense_evaluation_gives_the_same_scores_on_a_224_image_and_averages_larger_maps():
    ta.manual_seed(0)
    model = models.vgg("A", num_classes=5, width=1 / 16, init="he").eval()
    dense = model.to_fully_convolutional().eval()
    with ta.no_grad():
        x = images((1, 3, 224, 224))
        assert np.allclose(dense(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
        big = images((1, 3, 256, 256), seed=1)  # 8x8 feature maps: a 2x2 map of class scores
        maps = model.features(big)
        windows = [model.classifier(F.flatten(maps[:, :, i:i + 7, j:j + 7])).numpy() for i in (0, 1) for j in (0, 1)]
        assert np.allclose(dense(big).numpy(), np.mean(windows, axis=0), rtol=1e-5, atol=1e-6)


def test_deeper_configurations_start_from_a_trained_a():
    ta.manual_seed(0)
    a, d = models.vgg("A", num_classes=3, width=1 / 16), models.vgg("D", num_classes=3, width=1 / 16)
    own = d.features.conv3_3.weight.numpy().copy()
    models.init_from_a(d, a)
    for name in ("conv1_1", "conv2_1", "conv3_1", "conv3_2"):
        assert np.array_equal(d.features[name].weight.numpy(), a.features[name].weight.numpy()), name
    assert np.array_equal(d.classifier.fc8.weight.numpy(), a.classifier.fc8.weight.numpy())
    assert np.array_equal(d.features.conv3_3.weight.numpy(), own)  # the layers A lacks stay random


def test_vgg_cifar_runs_on_32x32():
    model = models.vgg_cifar("B").eval()
    assert model(images((2, 3, 32, 32))).shape == (2, 10)
    assert model.classifier.fc6.in_features == 128


# ------------------------------------------------------------------ registry
def test_models_are_registered_by_name():
    assert {"alexnet", "alexnet-cifar", "alexnet-torchvision", "four-layer-cnn", "vgg-a", "vgg-a-lrn", "vgg-e",
            "vgg-cifar-d"} <= set(models.names())
    assert models.get("four-layer-cnn", num_classes=5)(images((2, 3, 32, 32))).shape == (2, 5)
    model = models.get("alexnet-cifar", num_classes=4, columns=1, width=0.125)
    assert model.fc8.out_features == 4
    assert models.get("vgg-cifar-a", width=0.125).classifier.fc6.in_features == 64
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        models.get("resnet")
