"""The gradient checker passes correct backward passes and catches wrong ones, and says where."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex.gradcheck import GradcheckError, NondifferentiableError, gradcheck, gradcheck_report


class Cube(ta.Function):
    """y = x^3 with a backward that is right, or off by a planted factor 2/3 (the classic 2x for 3x^2)."""

    def __init__(self, planted_bug=False):
        self.factor = 2.0 if planted_bug else 3.0

    def forward(self, x):
        self.save_for_backward(x=x)
        return x * x * x

    def backward(self, gy):
        return (self.factor * self.saved.x ** 2 * gy,)


def f64(rng, *shape, requires_grad=True, device="cpu"):
    return ta.tensor(rng.standard_normal(shape), dtype="float64", device=device, requires_grad=requires_grad)


def test_passes_a_correct_backward(rng):
    assert gradcheck(lambda x: Cube()(x), f64(rng, 3, 4))


def test_catches_a_planted_wrong_backward_and_names_input_and_index(rng):
    x = f64(rng, 3, 4)
    with pytest.raises(GradcheckError, match=r"input 0 \(3, 4\): FAILED at 12 of 12.*worst at \(\d, \d\)"):
        gradcheck(lambda x: Cube(planted_bug=True)(x), x)


def test_fast_mode_catches_the_planted_bug_too(rng):
    x = f64(rng, 6, 5)
    assert gradcheck(lambda x: Cube()(x), x, fast_mode=True)
    assert not gradcheck(lambda x: Cube(planted_bug=True)(x), x, fast_mode=True, raise_exception=False)


def test_catches_a_wrong_gradient_for_one_input_only(rng):
    """Linear's gradient for the bias is right; one for the weight transposed into the wrong place is not."""

    class WrongWeightGrad(F.basic.Linear):
        def backward(self, gy):
            gx, gW, gb = super().backward(gy)
            return gx, gW[::-1].copy(), gb

    x, w, b = f64(rng, 4, 3), f64(rng, 5, 3), f64(rng, 5)
    report = gradcheck_report(lambda x, w, b: WrongWeightGrad()(x, w, b), x, w, b)
    assert [r.passed for r in report.inputs] == [True, False, True]
    assert not report.passed and "input 1 (5, 3): FAILED" in str(report)


def test_report_has_errors_per_input(rng):
    x, w = f64(rng, 4, 3), f64(rng, 5, 3)
    report = gradcheck_report(F.linear, x, w)
    assert report.passed and [r.position for r in report.inputs] == [0, 1]
    for r in report.inputs:
        assert r.max_abs_error < 1e-8 and r.max_rel_error < 1e-6
        assert r.n_compared == r.shape[0] * r.shape[1] and r.n_failed == 0


def test_check_restricts_inputs_and_constants_pass_through(rng):
    x, w = f64(rng, 4, 3), f64(rng, 5, 3, requires_grad=False)
    assert [r.position for r in gradcheck_report(F.linear, x, w).inputs] == [0]
    assert [r.position for r in gradcheck_report(F.linear, x, w, check=[1]).inputs] == [1]
    labels = ta.tensor(np.array([0, 2, 1, 4]))
    assert gradcheck(lambda x, w, labels: F.linear(x, w)[np.arange(4), labels.numpy()], x, w, labels)


def test_leaves_the_given_tensors_untouched(rng):
    x = f64(rng, 2, 3)
    before = x.numpy().copy()
    gradcheck(lambda x: Cube()(x), x)
    assert x.grad is None and np.array_equal(x.numpy(), before)


def test_same_seed_same_check_and_explicit_grad_output(rng):
    x = f64(rng, 3, 3)
    a = gradcheck_report(lambda x: Cube()(x), x, seed=3).inputs[0]
    b = gradcheck_report(lambda x: Cube()(x), x, seed=3).inputs[0]
    assert a == b
    ones = gradcheck_report(lambda x: Cube()(x), x, grad_output=np.ones((3, 3))).inputs[0]
    assert ones.analytic == pytest.approx(3 * x.numpy()[ones.worst_index] ** 2)


class SinCos(ta.Function):
    """(sin x, cos x): two outputs; the planted bug gets the sign of d cos / dx wrong."""

    def __init__(self, planted_bug=False):
        self.sign = 1.0 if planted_bug else -1.0

    def forward(self, x):
        self.save_for_backward(x=x)
        return np.sin(x), np.cos(x)

    def backward(self, g_sin, g_cos):
        x = self.saved.x
        return (g_sin * np.cos(x) + self.sign * g_cos * np.sin(x),)


def test_checks_each_of_several_outputs_and_names_the_wrong_one(rng):
    x = f64(rng, 2, 4)
    assert gradcheck(lambda x: F.split(x, 2), x) and gradcheck(lambda x: list(SinCos()(x)), x)
    report = gradcheck_report(lambda x: SinCos(planted_bug=True)(x), x)
    assert [(r.output, r.passed) for r in report.inputs] == [(0, True), (1, False)]
    with pytest.raises(GradcheckError, match=r"output 1, input 0 \(2, 4\): FAILED at 4 of 4"):
        gradcheck(lambda x: SinCos(planted_bug=True)(x), x, fast_mode=True)
    ones = [np.ones((2, 4))] * 2
    assert gradcheck(lambda x: SinCos()(x), x, grad_output=ones)
    with pytest.raises(ValueError, match="fn returns 2 outputs; grad_output must be a list of as many"):
        gradcheck(lambda x: SinCos()(x), x, grad_output=ones[0])


def test_a_relu_kink_is_named_not_differentiable_not_a_wrong_backward():
    """ReLU at exactly 0: the one-sided slopes are 0 and 1, the central difference gives 1/2."""
    x = ta.tensor(np.array([0.0, 1.0]), dtype="float64", requires_grad=True)
    with pytest.raises(NondifferentiableError, match=r"input 0 \(2,\): not differentiable at 1 of 2; .*"
                                                     r"a kink at \(0,\): one-sided slopes 0 \(left\) and 1 \(right\)"):
        gradcheck(F.relu, x, grad_output=np.ones(2))
    report = gradcheck_report(F.relu, x, grad_output=np.ones(2)).inputs[0]
    assert (report.n_failed, report.n_kinks, report.passed) == (0, 1, False)


def test_a_max_pool_tie_is_named_not_differentiable():
    x = ta.tensor(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), requires_grad=True)  # 3 twice in one window
    report = gradcheck_report(lambda x: F.max_pool2d(x, 2), x, grad_output=np.ones((1, 1, 1, 1))).inputs[0]
    assert report.n_kinks == 2 and report.n_failed == 0 and report.kink_index == (0, 0, 0, 1)


def test_a_wrong_backward_beside_a_kink_is_still_called_wrong(rng):
    x = ta.tensor(np.array([0.0, 1.5]), requires_grad=True)
    with pytest.raises(GradcheckError, match="FAILED at 1 of 2, not differentiable at 1 of 2") as caught:
        gradcheck(lambda x: Cube(planted_bug=True)(x) + F.relu(x), x)
    assert type(caught.value) is GradcheckError


def test_refuses_float32_and_bad_arguments(rng):
    x32 = ta.tensor(rng.standard_normal((2, 2)), dtype="float32", requires_grad=True)
    with pytest.raises(TypeError, match="input 0 is float32.*float64"):
        gradcheck(F.relu, x32)
    x = f64(rng, 2, 2, requires_grad=False)
    with pytest.raises(ValueError, match="no input to check"):
        gradcheck(F.relu, x)
    with pytest.raises(ValueError, match="check must name"):
        gradcheck(F.relu, x, check=[1])
    with pytest.raises(TypeError, match="must be a Tensor"):
        gradcheck(F.relu, x.numpy())
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda x: x.numpy(), x, check=[0])
    with pytest.raises(ValueError, match="grad_output has shape"):
        gradcheck(F.relu, x, check=[0], grad_output=np.ones(3))


@pytest.mark.gpu
def test_runs_on_the_gpu(rng):
    x = f64(rng, 3, 4, device="cuda")
    assert gradcheck(lambda x: Cube()(x), x)
    assert not gradcheck(lambda x: Cube(planted_bug=True)(x), x, fast_mode=True, raise_exception=False)
