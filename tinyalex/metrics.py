"""Top-k accuracy and running sums, kept on the device until someone reads them.

The paper reports *error rates*: "top-1 and top-5 test set error rates ... the fraction of test
images for which the correct label is not among the five labels considered most probable by the
model" (Section 1; Table 1 and 2). Counting stays on the device (a GPU array) so a training step
never waits for the host; ``Running.read`` copies the totals once when a number is printed.
"""
from . import backend


def topk_correct(scores, labels, ks=(1, 5)):
    """Number of rows whose label is among the ``k`` highest scores, for each k in ``ks``.

    - scores: (N, classes) raw array (logits or probabilities; only their order matters)
    - labels: (N,) integer raw array
    Returns a tuple of 0-d device arrays (no host sync). A k above the number of classes counts
    every row as correct, as top-5 does trivially with 5 classes or fewer.
    """
    xp, device = backend.xp(scores), backend.device_of(scores)
    # a two-column network may end on another device than the one the labels were loaded on
    with backend.on_device(device):  # CuPy makes arrays and runs kernels on the current device
        labels = backend.to_device(labels, device).reshape(-1, 1).astype(xp.int64, copy=False)
        true_score = xp.take_along_axis(scores, labels, axis=1)
        # rank of the true class = classes ordered before it; a tie goes to the lower class index, as a
        # stable sort would order them, so a constant output is not counted as right for every label
        classes = xp.arange(scores.shape[1]).reshape(1, -1)
        ahead = (scores > true_score) | ((scores == true_score) & (classes < labels))
        ahead |= xp.isnan(scores).any(axis=1, keepdims=True)  # a NaN score is never a right answer
        rank = ahead.sum(axis=1)
        return tuple((rank < k).sum() for k in ks)


class Running:
    """Sums of named quantities over a stream of batches, averaged per image on ``read``.

    ``add(n, loss=..., top1=...)`` adds device arrays or numbers without a host sync; ``read()``
    returns ``{name: sum / count}`` as Python floats.
    """

    def __init__(self):
        self.count = 0
        self.sums = {}

    def add(self, n, **values):
        self.count += n
        for name, v in values.items():
            self.sums[name] = self.sums[name] + v if name in self.sums else v

    def read(self):
        if self.count == 0:
            raise ValueError("metrics: nothing to average (did the loader yield no batches?)")
        # + 0.0 turns -0.0 (a loss of exactly 0, negated: -log 1) into 0.0, which prints without a sign
        return {name: float(backend.to_numpy(v)) / self.count + 0.0 for name, v in self.sums.items()}
