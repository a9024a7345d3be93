"""The tape of one forward pass: the ops it calls, in order, with their input and output tensors."""
from ..graph import Watcher


class Tape(Watcher):
    """Watcher that records each op a forward pass calls, in call order.

    ``entries`` holds (function, input tensors, output tensors); keeping the tensors themselves
    keeps their ``id`` unique, which is how an output is matched with the later op that reads it.
    """

    def __init__(self):
        self.entries = []

    def on_forward(self, fn, inputs, outputs, seconds):
        self.entries.append((fn, list(inputs), list(outputs)))

    def leaves(self):
        """Tensors read by some op but made by none: weights, the images, labels and constants."""
        made = {id(t) for _, _, outputs in self.entries for t in outputs}
        found = {}
        for _, inputs, _ in self.entries:
            found.update((id(t), t) for t in inputs if id(t) not in made)
        return list(found.values())


def record(fn):
    """The tape of the ops that ``fn()`` calls (whatever ``fn`` returns is let go)."""
    with Tape() as tape:
        fn()
    return tape
