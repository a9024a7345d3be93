"""Modules and layers: registration, state, modes, devices, initialisers; each layer = its functional op."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.scale = ta.tensor(2.0)  # no requires_grad: a plain attribute, not a parameter

    def forward(self, x):
        return F.relu(self.bn(self.conv(x))) * self.scale


def small_net():
    return nn.Sequential(Block(), nn.MaxPool2d(3, 2), nn.Flatten(), nn.Dropout(), nn.Linear(4 * 3 * 3, 5))


def image(shape=(2, 3, 8, 8), seed=0, dtype=np.float32):
    return ta.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ------------------------------------------------------------------ Module
def test_attribute_assignment_registers_parameters_buffers_and_submodules():
    net = small_net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.conv.weight", "0.conv.bias", "0.bn.weight", "0.bn.bias", "4.weight", "4.bias"]
    assert list(net.buffers) == ["0.bn.running_mean", "0.bn.running_var"]
    assert net.num_parameters() == 4 * 27 + 4 + 4 + 4 + 5 * 36 + 5
    assert all(p.requires_grad for p in net.parameters())


def test_reassigning_keeps_the_kind_of_state():
    bn = nn.BatchNorm2d(2)
    bn.running_mean = np.ones(2)
    assert list(bn.buffers) == ["running_mean", "running_var"] and bn.running_mean[0] == 1
    lin = nn.Linear(2, 2)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"] and lin.bias is None


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = ta.tensor([1.0], requires_grad=True)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_train_and_eval_reach_every_module():
    net = small_net().eval()
    assert not any(m.training for m in net.modules())
    assert all(m.training for m in net.train().modules())


def test_dropout_is_the_identity_in_eval_mode_and_its_op_with_the_same_p_in_training():
    x = image()  # p = 0.2, not 0.5: a layer that passed 1 - p for p would show
    assert np.array_equal(nn.Dropout(0.2).eval()(x).numpy(), x.numpy())
    assert np.allclose(nn.Dropout(0.2, mode="paper").eval()(x).numpy(), 0.8 * x.numpy(), rtol=1e-6, atol=0)
    ta.manual_seed(0)
    y = nn.Dropout(0.2)(x).numpy()
    ta.manual_seed(0)
    assert np.array_equal(y, F.dropout(x, 0.2).numpy())


def test_state_dict_round_trip_is_a_snapshot_with_buffers():
    ta.manual_seed(0)
    net = small_net()
    net(image())  # training mode: batch norm moves its running statistics
    state = net.state_dict()
    assert set(state) == {n for n, _ in net.named_parameters()} | set(net.buffers)
    assert not np.array_equal(state["0.bn.running_mean"], 0)
    net.parameters()[0].data += 1  # the snapshot does not follow the model
    other = small_net()
    assert other.load_state_dict(state) == ([], [])
    for name, value in other.state_dict().items():
        assert np.array_equal(value, state[name]), name
    x = image(seed=1)
    net.load_state_dict(state)
    assert np.array_equal(net.eval()(x).numpy(), other.eval()(x).numpy())


def test_load_state_dict_names_what_is_missing_unexpected_or_misshapen():
    net, state = small_net(), small_net().state_dict()
    with pytest.raises(ValueError, match=r"missing \['4.bias'\]"):
        net.load_state_dict({k: v for k, v in state.items() if k != "4.bias"})
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        net.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'4.weight' has shape \(5, 35\) in the state but \(5, 36\)"):
        net.load_state_dict({**state, "4.weight": np.zeros((5, 35))})
    missing, unexpected = net.load_state_dict({"4.bias": np.ones(5), "extra": np.zeros(1)}, strict=False)
    assert "4.weight" in missing and unexpected == ["extra"]
    assert np.array_equal(net[4].bias.numpy(), np.ones(5))


BAD_ENTRY = {"misshapen": np.zeros((5, 35)), "text": np.full((5, 36), "x"), "complex": np.full((5, 36), 1j)}


@pytest.mark.parametrize("bad", BAD_ENTRY.values(), ids=BAD_ENTRY)
def test_a_refused_load_state_dict_leaves_every_entry_as_it_was(bad):
    ta.manual_seed(0)
    net, state = small_net(), small_net().state_dict()
    before = net.state_dict()
    with pytest.raises(ValueError, match="'4.weight'"):  # the last name in order: every other one comes first
        net.load_state_dict({**state, "4.weight": bad})
    for name, value in net.state_dict().items():
        assert value.tobytes() == before[name].tobytes(), name
    net.load_state_dict(state)
    assert all(np.array_equal(value, state[name]) for name, value in net.state_dict().items())


def test_to_casts_in_place_so_an_optimiser_keeps_its_tensors():
    net = small_net()
    params = net.parameters()
    assert net.to(dtype="float64") is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert {p.dtype for p in params} == {np.dtype("float64")}
    assert net[0].bn.running_var.dtype == np.float64
    assert net.device == "cpu"


def test_zero_grad_forgets_gradients():
    net = small_net()
    net(image()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_reads_like_the_layer_list():
    text = repr(nn.Sequential({"conv2": nn.Conv2d(96, 256, 5, padding=2, groups=2), "lrn2": nn.LRN()}))
    assert text == ("Sequential(\n  (conv2): Conv2d(96, 256, kernel_size=5, padding=2, groups=2)\n"
                    "  (lrn2): LRN(n=5, k=2.0, alpha=0.0001, beta=0.75)\n)")


def test_sequential_indexing_and_bad_entries():
    seq = nn.Sequential({"a": nn.ReLU(), "b": nn.Tanh()})
    assert isinstance(seq[1], nn.Tanh) and seq["a"] is seq[0] and len(seq) == 2 and seq.names() == ["a", "b"]
    with pytest.raises(TypeError, match="Sequential: entry '0' is a function"):
        nn.Sequential(F.relu)


# ------------------------------------------------------------------ layers = their ops
def test_layers_compute_their_functional_op():
    x = image((2, 4, 9, 9))
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert np.array_equal(conv(x).numpy(), F.conv2d(x, conv.weight, conv.bias, 2, 1, 2).numpy())
    lin = nn.Linear(4 * 81, 3, bias=False)
    assert lin.bias is None and np.array_equal(lin(F.flatten(x)).numpy(), F.linear(F.flatten(x), lin.weight).numpy())
    assert np.array_equal(nn.MaxPool2d(3, 2)(x).numpy(), F.max_pool2d(x, 3, 2).numpy())
    assert np.array_equal(nn.AvgPool2d(2)(x).numpy(), F.avg_pool2d(x, 2, 2).numpy())
    assert np.array_equal(nn.LRN(alpha=1.0, k=1.0)(x).numpy(), F.lrn(x, 5, 1.0, 1.0, 0.75).numpy())


def test_lrn_with_two_groups_normalises_each_column_on_its_own():
    x = image((1, 8, 3, 3))
    halves = [F.lrn(h, 5, 1.0, 1.0, 0.75).numpy() for h in F.split(x, 2)]
    assert np.array_equal(nn.LRN(k=1.0, alpha=1.0, groups=2)(x).numpy(), np.concatenate(halves, axis=1))
    assert not np.allclose(nn.LRN(k=1.0, alpha=1.0)(x).numpy(), np.concatenate(halves, axis=1))


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    bn, x = nn.BatchNorm2d(3, momentum=0.5), image((4, 3, 5, 5), dtype=np.float64)
    bn.to(dtype="float64")
    y = bn(x).numpy()
    assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    assert np.allclose(bn.running_mean, 0.5 * x.numpy().mean(axis=(0, 2, 3)))
    expected = (x.numpy() - bn.running_mean.reshape(1, 3, 1, 1)) / np.sqrt(bn.running_var.reshape(1, 3, 1, 1) + 1e-5)
    assert np.allclose(bn.eval()(x).numpy(), expected)


def test_a_network_of_layers_passes_gradcheck():
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12, 2))
    net.to(dtype="float64")
    x = image((2, 2, 4, 4), dtype=np.float64)
    x.requires_grad = True
    assert ta.gradcheck(lambda x, *params: net(x), x, *net.parameters())


def test_bad_layer_arguments_are_named():
    with pytest.raises(ValueError, match="Conv2d: input channels \\(3\\) .* groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    for bad in ({"groups": 0}, {"kernel_size": 0}, {"stride": (1, 0)}):
        with pytest.raises(ValueError, match="Conv2d: (groups|kernel_size and stride) must be (a )?positive"):
            nn.Conv2d(**{"in_channels": 3, "out_channels": 4, "kernel_size": 3, **bad})
    with pytest.raises(ValueError, match="Dropout: p"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="Dropout: mode"):
        nn.Dropout(0.5, mode="scaled")
    with pytest.raises(ValueError, match="Dropout: p"):
        nn.Dropout("0.5")
    with pytest.raises(ValueError, match="lrn: groups must be .* divides the 6 channels, got 4"):
        nn.LRN(groups=4)(ta.tensor(np.ones((1, 6, 2, 2))))


def test_a_net_on_the_gpu_computes_what_it_computes_on_the_cpu(device):
    ta.manual_seed(0)
    net, x = small_net().eval(), image()
    expected = net(x).numpy()
    got = net.to(device)(x.to(device)).numpy()
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ initialisers
def test_the_engine_seed_repeats_the_initial_weights():
    ta.manual_seed(3)
    a = nn.Linear(10, 10).weight.numpy()
    ta.manual_seed(3)
    assert np.array_equal(nn.Linear(10, 10).weight.numpy(), a)


def test_he_glorot_and_paper_schemes_have_their_spread():
    net = nn.Sequential({"conv2": nn.Conv2d(64, 64, 5), "fc8": nn.Linear(1600, 400)})
    nn.init.apply(net, "he")
    assert abs(net.conv2.weight.numpy().std() / np.sqrt(2 / 1600) - 1) < 0.02
    nn.init.apply(net, "glorot")
    assert abs(np.abs(net.fc8.weight.numpy()).max() / np.sqrt(6 / 2000) - 1) < 0.01
    nn.init.apply(net, "vgg-paper")
    assert abs(net.fc8.weight.numpy().std() / 0.1 - 1) < 0.02  # variance 1e-2, as VGG's text says
    nn.init.apply(net, "alexnet-paper")
    assert abs(net.fc8.weight.numpy().std() / 0.01 - 1) < 0.02
    assert np.all(net.conv2.bias.numpy() == 1) and np.all(net.fc8.bias.numpy() == 0)  # section 5
    with pytest.raises(ValueError, match="unknown scheme 'lecun'"):
        nn.init.apply(net, "lecun")


def test_deferred_layers_start_at_zero():
    with nn.init.deferred():
        lin = nn.Linear(4, 4)
    assert not lin.weight.numpy().any() and not nn.init.is_deferred()
