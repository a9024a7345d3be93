"""DataLoader: batches of (images, labels) tensors on a device, shuffled and augmented reproducibly."""
import concurrent.futures
import math

import numpy as np

from ..tensor import tensor
from .transforms import ToFloat, takes_batches

_TO_FLOAT = ToFloat()


class DataLoader:
    """Iterate over a data set in batches: ``for images, labels in loader: ...``.

    ``DataLoader(dataset, batch_size, shuffle=False, seed=0, drop_last=False, device="cpu",
    transform=None, workers=2, epoch=0, rank=0, world_size=1, dtype="float32")`` yields

    - images: ``dtype`` Tensor (N, 3, H, W) on ``device``: ``transform(image, rng)`` of each image
      (it must end in CHW float, e.g. with ``transforms.ToFloat()``), or, without a transform, the
      images as they are, on [0, 1] (x / 255)
    - labels: int64 Tensor (N,) on ``device``

    Reproducible: the order of epoch e is a permutation drawn from (seed, e), and batch b of epoch e
    is augmented with a generator seeded from (seed, e, b), whatever thread makes it; so a run
    resumed at epoch e (``set_epoch(e)``) sees exactly the batches it would have seen. Each
    complete pass moves on to the next epoch. ``len(loader)`` is the number of batches.

    One of ``world_size`` processes (data-parallel training, ``distributed``): every process draws the
    same order, cuts it into the batches of ``world_size x batch_size`` images that one process with that
    batch size would take, and takes the ``rank``-th of the ``world_size`` consecutive slices of each
    (a shorter last batch is cut as evenly as it goes). Process r augments its slice with a generator
    seeded from (seed, e, b, r), so the processes do not draw the same crops.

    Fast path: a data set held in memory (``.images`` (N, H, W, C)) with a transform that has a
    ``batch`` method (a ``Compose`` of crops, flips, colour steps and ``ToFloat``) is augmented a
    whole batch at a time, vectorised. Otherwise each image is fetched (decoded) and transformed on
    its own. With ``workers`` > 0, that many background threads prepare the next batches (at most
    2 x workers ahead) while the caller computes; breaking out of the loop, an exception or Ctrl-C
    cancels the queued work and the threads end.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False, device="cpu",
                 transform=None, workers=2, epoch=0, rank=0, world_size=1, dtype="float32"):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(workers, int) or workers < 0:
            raise ValueError(f"DataLoader: workers must be an int >= 0, got {workers!r}")
        if not (isinstance(world_size, int) and isinstance(rank, int) and 0 <= rank < world_size):
            raise ValueError(f"DataLoader: rank must be an int in [0, world_size), got rank {rank!r} of "
                             f"world_size {world_size!r}")
        if len(dataset) == 0:
            raise ValueError("DataLoader: the data set is empty")
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed
        self.drop_last, self.device, self.transform, self.workers = drop_last, device, transform, workers
        self.epoch, self.rank, self.world_size, self.dtype = epoch, rank, world_size, np.dtype(dtype)

    def set_epoch(self, epoch):
        """Make the next pass epoch ``epoch`` (its order and augmentation), e.g. when resuming."""
        self.epoch = int(epoch)

    def __len__(self):
        n, size = len(self.dataset), self.batch_size * self.world_size
        return n // size if self.drop_last else math.ceil(n / size)

    def order(self, epoch=None):
        """Indices of the data set in the order epoch ``epoch`` (default: the next) visits them."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch if epoch is None else epoch]).permutation(n)

    def _batch(self, epoch, b, indices):
        """Batch ``b`` of epoch ``epoch`` as NumPy arrays (float32 (N, C, H, W), int64 (N,))."""
        # one process keeps the (seed, epoch, batch) streams it always had
        rng = np.random.default_rng([self.seed, epoch, b] + ([self.rank] if self.world_size > 1 else []))
        t = self.transform or _TO_FLOAT
        if hasattr(self.dataset, "images") and takes_batches(t):
            images = t.batch(self.dataset.images[indices], rng)
            labels = self.dataset.labels[indices]
        else:
            pairs = [self.dataset[int(i)] for i in indices]
            views = [t(image, rng) for image, _ in pairs]
            if len({v.shape for v in views}) > 1:
                raise ValueError(f"DataLoader: images of batch {b} differ in size after the transform "
                                 f"({views[0].shape}, ...); crop or resize them to one size")
            images = np.stack(views)
            labels = np.array([label for _, label in pairs])
        if images.ndim != 4 or images.dtype.kind != "f":
            raise TypeError(f"DataLoader: the transform must give float CHW images, got {images.dtype} "
                            f"{images.shape[1:]}; end it with transforms.ToFloat()")
        return images.astype(self.dtype, copy=False), labels.astype(np.int64, copy=False)

    def _as_tensors(self, batch):
        images, labels = batch
        return tensor(images, device=self.device), tensor(labels, device=self.device)

    def __iter__(self):
        epoch, order = self.epoch, self.order()
        size, r, n = self.batch_size * self.world_size, self.rank, self.world_size
        batches = [order[i:i + size] for i in range(0, len(order), size)][:len(self)]
        batches = [batch[r * len(batch) // n:(r + 1) * len(batch) // n] for batch in batches]
        batches = [batch for batch in batches if len(batch)]  # a test set smaller than the processes
        if self.workers == 0:
            for b, indices in enumerate(batches):
                yield self._as_tensors(self._batch(epoch, b, indices))
        else:
            pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="DataLoader")
            try:
                ahead = 2 * self.workers
                futures = [pool.submit(self._batch, epoch, b, idx) for b, idx in enumerate(batches[:ahead])]
                for b in range(len(batches)):
                    if b + ahead < len(batches):
                        futures.append(pool.submit(self._batch, epoch, b + ahead, batches[b + ahead]))
                    yield self._as_tensors(futures[b].result())
                    futures[b] = None  # the batch is handed out: let it go
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        self.epoch = epoch + 1
