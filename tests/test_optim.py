"""The paper's update rule by hand, exact resume from state, and the learning-rate schedules."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import optim


def parameter(values, device="cpu"):
    return ta.tensor(np.asarray(values, np.float64), device=device, requires_grad=True)


def test_one_step_is_the_rule_of_section_5():
    # v <- 0.9 v - 0.0005 eps w - eps dL/dw ;  w <- w + v, checked over two steps by hand
    w = parameter([1.0, -2.0, 3.0])
    opt = optim.SGD([w], lr=0.01)
    g1, g2 = np.array([0.5, 0.25, -1.0]), np.array([-0.5, 1.0, 2.0])
    w0 = w.numpy().copy()
    w.grad = g1.copy()
    opt.step()
    v1 = -0.0005 * 0.01 * w0 - 0.01 * g1
    assert np.allclose(w.numpy(), w0 + v1, rtol=1e-15, atol=0)
    w.grad = g2.copy()
    opt.step()
    v2 = 0.9 * v1 - 0.0005 * 0.01 * (w0 + v1) - 0.01 * g2
    assert np.allclose(w.numpy(), w0 + v1 + v2, rtol=1e-15, atol=1e-18)
    assert np.array_equal(w.grad, g2)  # the gradient is read, not overwritten


def test_step_updates_in_place_and_skips_parameters_without_gradient():
    a, b = parameter(np.ones((3, 4))), parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=0.1)
    data, velocity = a.data, opt.velocity[0]
    a.grad = np.ones((3, 4))
    opt.step()
    assert a.data is data and opt.velocity[0] is velocity  # no new arrays in the training step
    assert np.array_equal(b.numpy(), np.ones(2))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("workers", [1, 3])
def test_the_cpu_update_by_cache_blocks_gives_the_bits_of_the_whole_array_update(monkeypatch, order, workers):
    # 50 values in blocks of 7 (the last one short), shared out among 1 or 3 threads; a Fortran-ordered
    # weight cannot be cut into blocks in place and takes the whole-array path: all must give the
    # rule's bits exactly
    from tinyalex import threads
    monkeypatch.setattr(optim, "CPU_BLOCK", 7)
    shares = []
    update_blocks = optim.SGD._update_blocks
    monkeypatch.setattr(optim.SGD, "_update_blocks", lambda self, blocks: shares.append(len(blocks))
                        or update_blocks(self, blocks))
    rng = np.random.default_rng(0)
    w = ta.tensor(np.asfortranarray(rng.standard_normal((5, 10)).astype(np.float32)) if order == "F"
                  else rng.standard_normal((5, 10)).astype(np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.5, weight_decay=0.01)  # not the defaults: each must be read
    expect_w, expect_v = w.numpy().copy(), np.zeros((5, 10), np.float32)
    with threads.workers(workers):
        for _ in range(3):
            w.grad = rng.standard_normal((5, 10)).astype(np.float32)
            opt.step()
            expect_v = expect_v * np.float32(0.5) - expect_w * np.float32(0.01 * 0.1) - w.grad * np.float32(0.1)
            expect_w = expect_w + expect_v
    assert np.array_equal(w.numpy(), expect_w) and np.array_equal(opt.velocity[0], expect_v)
    assert w.data.flags.f_contiguous == (order == "F")  # updated in place, layout kept
    assert sorted(shares) == ([] if order == "F" else [8] * 3 if workers == 1 else [2] * 3 + [3] * 6)


def test_zero_grad_forgets_gradients():
    a = parameter([1.0])
    a.grad = np.ones(1)
    optim.SGD([a], lr=0.1).zero_grad()
    assert a.grad is None


def test_state_dict_resumes_exactly():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((6, 5))
    w = parameter(rng.standard_normal(5))
    opt = optim.SGD([w], lr=0.05)
    for g in grads[:3]:
        w.grad = g
        opt.step()
    state, resumed = opt.state_dict(), parameter(w.numpy())
    other = optim.SGD([resumed], lr=1.0, momentum=0.0, weight_decay=0.0)
    other.load_state_dict({k: np.asarray(v) for k, v in state.items()})  # as read back from an .npz
    for g in grads[3:]:
        w.grad, resumed.grad = g, g.copy()
        opt.step()
        other.step()
    assert np.array_equal(w.numpy(), resumed.numpy())


def test_bad_arguments_and_states_are_named():
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="SGD: expected Tensors that require grad"):
        optim.SGD([ta.tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="SGD: lr should be a finite number >= 0, got -1"):
        optim.SGD([parameter([1.0])], lr=-1)
    opt = optim.SGD([parameter([1.0, 2.0])], lr=0.1)
    with pytest.raises(ValueError, match=r"velocity.0 should be a float array of shape \(2,\) \(parameter 0\), "
                                         r"got float64 \(3,\)"):
        opt.load_state_dict({**opt.state_dict(), "velocity.0": np.zeros(3)})
    with pytest.raises(ValueError, match=r"missing \['velocity.0'\], unexpected none"):
        opt.load_state_dict({"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0})


def trained(lr=0.05, seed=0):
    """Two parameters and an SGD that has taken two steps, so that every velocity is non-zero."""
    rng = np.random.default_rng(seed)
    params = [parameter(rng.standard_normal((3, 2))), parameter(rng.standard_normal(4))]
    opt = optim.SGD(params, lr=lr)
    for _ in range(2):
        for p in params:
            p.grad = rng.standard_normal(p.shape)
        opt.step()
    return params, opt


def assert_same_state(a, b):
    """Equal state dicts; arrays bit for bit (dtype, shape and bytes), so -0.0 vs 0.0 or a cast would show."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert (a[k].dtype, a[k].shape, a[k].tobytes()) == (b[k].dtype, b[k].shape, b[k].tobytes()), k
        else:
            assert (type(a[k]), a[k]) == (type(b[k]), b[k]), k


BAD_SGD_STATES = {  # each breaks one field of an otherwise good state that differs everywhere from the target
    "lr a list": {"lr": [0.1]},
    "lr a string": {"lr": "0.1"},
    "lr a bool": {"lr": True},
    "lr NaN": {"lr": float("nan")},
    "lr infinite": {"lr": np.float64("inf")},
    "lr too large for a float": {"lr": 10 ** 400},
    "momentum negative": {"momentum": -0.9},
    "weight_decay a 1-element array": {"weight_decay": np.array([5e-4])},
    "a velocity of integers": {"velocity.1": np.zeros(4, np.int64)},
    "a velocity as a list": {"velocity.1": [0.0] * 4},
    "a velocity of the wrong shape": {"velocity.1": np.zeros((4, 1))},
    "an unknown key": {"nesterov": True},
    "a velocity too many": {"velocity.2": np.zeros(1)},
}


@pytest.mark.parametrize("bad", BAD_SGD_STATES.values(), ids=BAD_SGD_STATES)
def test_a_failed_sgd_load_changes_nothing(bad):
    params, opt = trained()
    twin_params, twin = trained()  # never sees the bad state
    _, donor = trained(lr=0.2, seed=1)
    state = {**donor.state_dict(), "momentum": 0.5, "weight_decay": 0.0, **bad}
    with pytest.raises((TypeError, ValueError), match="SGD.load_state_dict: .*(got|missing)"):
        opt.load_state_dict(state)
    assert_same_state(opt.state_dict(), twin.state_dict())
    for p, q in zip(params, twin_params):
        p.grad = q.grad = np.linspace(-1, 1, p.size).reshape(p.shape)
    opt.step()
    twin.step()
    assert all(p.numpy().tobytes() == q.numpy().tobytes() for p, q in zip(params, twin_params))


def test_a_missing_field_changes_nothing():
    _, opt = trained()
    _, twin = trained()
    state = trained(lr=0.2, seed=1)[1].state_dict()
    del state["weight_decay"]
    with pytest.raises(ValueError, match=r"missing \['weight_decay'\]"):
        opt.load_state_dict(state)
    assert_same_state(opt.state_dict(), twin.state_dict())


def test_load_casts_velocities_to_the_parameters_and_does_not_alias_the_state():
    _, opt = trained()
    state = {**trained(lr=0.2, seed=1)[1].state_dict(), "lr": np.int64(1)}
    state["velocity.0"] = state["velocity.0"].astype(np.float32)  # e.g. saved by a float32 run
    opt.load_state_dict(state)
    assert opt.lr == 1.0 and type(opt.lr) is float
    assert opt.velocity[0].dtype == np.float64 and np.array_equal(opt.velocity[0], state["velocity.0"])
    opt.params[1].grad = np.ones(4)
    opt.step()
    assert not np.array_equal(opt.velocity[1], state["velocity.1"])  # the step moved the optimiser's copy only


def test_reduce_on_plateau_divides_by_ten_when_validation_error_stops_improving():
    opt = optim.SGD([parameter([1.0])], lr=0.01)
    schedule = optim.ReduceOnPlateau(opt, patience=2)
    reduced = [schedule.step(e) for e in [0.5, 0.4, 0.4, 0.41, 0.42, 0.39, 0.39, 0.39, 0.39]]
    assert reduced == [False, False, False, False, True, False, False, False, True]  # the 3rd bad epoch
    assert opt.lr == pytest.approx(1e-4) and schedule.reductions == 2
    state = schedule.state_dict()
    again = optim.ReduceOnPlateau(opt, patience=2)
    again.load_state_dict({k: np.asarray(v) for k, v in state.items()})
    assert again.state_dict() == state
    fresh = optim.ReduceOnPlateau(opt).state_dict()  # best = inf until the first epoch: a valid state
    again.load_state_dict(fresh)
    assert again.state_dict() == fresh
    accuracy = optim.ReduceOnPlateau(opt, patience=0, mode="max")
    assert [accuracy.step(a) for a in (0.5, 0.6, 0.6)] == [False, False, True]
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        optim.ReduceOnPlateau(opt, mode="lower")
    with pytest.raises(ValueError, match="patience should be an integer >= 0, got -1"):
        optim.ReduceOnPlateau(opt, patience=-1)  # would act as 0, silently


def test_step_schedule_multiplies_by_gamma_every_step_size_epochs():
    opt = optim.SGD([parameter([1.0])], lr=0.1)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.1)
    rates = []
    for _ in range(5):
        schedule.step()
        rates.append(opt.lr)
    assert rates == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])
    resumed = optim.StepLR(optim.SGD([parameter([1.0])], lr=0.5), step_size=2)
    resumed.load_state_dict(schedule.state_dict())
    resumed.step()
    assert resumed.optimizer.lr == pytest.approx(1e-4)



def stepped(kind):
    """A schedule of ``kind`` one or two epochs in, with its optimiser, and how to advance it an epoch."""
    opt = optim.SGD([parameter([1.0])], lr=0.1)
    if kind == "plateau":
        schedule = optim.ReduceOnPlateau(opt, patience=1)
        advance = lambda: schedule.step(0.6)  # noqa: E731 - no improvement: counts towards a reduction
        schedule.step(0.5)
    else:
        schedule = optim.StepLR(opt, step_size=2)
        advance = schedule.step
    advance()
    return schedule, advance


BAD_SCHEDULE_STATES = {  # the fields before the bad one are good and differ from the target's
    "a count as a list": ("plateau", {"best": 0.1, "bad_epochs": 0, "reductions": [1]}),
    "a count as a float": ("plateau", {"best": 0.1, "bad_epochs": 1.5, "reductions": 0}),
    "a count as a string": ("plateau", {"best": 0.1, "bad_epochs": 0, "reductions": "1"}),
    "a negative count": ("plateau", {"best": 0.1, "bad_epochs": 0, "reductions": -1}),
    "best NaN": ("plateau", {"best": float("nan"), "bad_epochs": 0, "reductions": 0}),
    "an unknown key": ("plateau", {"best": 0.1, "bad_epochs": 0, "reductions": 0, "patience": 5}),
    "epoch None": ("step", {"base_lr": 0.5, "epoch": None}),
    "epoch a 0-d float array": ("step", {"base_lr": 0.5, "epoch": np.array(2.0)}),
    "base_lr infinite": ("step", {"base_lr": float("inf"), "epoch": 3}),
    "epoch missing": ("step", {"base_lr": 0.5}),
    "not a dict": ("step", [("base_lr", 0.5), ("epoch", 3)]),
}


@pytest.mark.parametrize("kind, bad", BAD_SCHEDULE_STATES.values(), ids=BAD_SCHEDULE_STATES)
def test_a_failed_schedule_load_changes_nothing(kind, bad):
    schedule, advance = stepped(kind)
    twin, twin_advance = stepped(kind)
    name = type(schedule).__name__
    with pytest.raises((TypeError, ValueError), match=f"{name}.load_state_dict: .*(got|missing)"):
        schedule.load_state_dict(bad)
    assert_same_state(schedule.state_dict(), twin.state_dict())
    for _ in range(3):
        assert advance() == twin_advance() and schedule.optimizer.lr == twin.optimizer.lr

def test_a_step_on_the_gpu_equals_the_step_on_the_cpu(device):
    rng = np.random.default_rng(1)
    w0, g = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    results = []
    for where in ("cpu", device):
        w = ta.tensor(w0, device=where, requires_grad=True)
        opt = optim.SGD([w], lr=0.1)
        for _ in range(2):
            w.grad = ta.tensor(g, device=where).data
            opt.step()
        results.append(w.numpy())
    assert np.allclose(results[1], results[0], rtol=1e-5, atol=1e-7)


def test_velocity_follows_a_parameter_cast_after_the_optimiser_was_made():
    w = ta.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.data, w.grad = w.data.astype(np.float64), np.ones(3)  # as model.to(dtype="float64") does
    opt.step()
    assert opt.velocity[0].dtype == np.float64 and w.dtype == np.float64
    assert np.allclose(w.numpy(), 1 - 0.1 * 5e-4 - 0.1, rtol=1e-15)
