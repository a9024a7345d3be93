"""`tinyalex bench`: how fast is a training step, op by op, and how far is it from the machine's limit?

What is measured, for one model at one batch size on one device:

- **peak**: the float32 matrix multiply (sgemm, 2048^3) of the same array module, the practical
  limit of every convolution and fully connected layer (they are GEMMs after im2col);
- **ops**: every convolution, LRN, max-pooling, fully connected layer and the softmax cross-entropy of
  the model, each at the exact shapes it meets in the network, forward and backward timed apart;
- **step**: a whole training step as in the paper (forward, loss, backward, SGD with momentum and
  weight decay), in images/s;
- **memory**: how much a step adds to the process (CPU: peak RSS growth; GPU: memory-pool growth),
  each framework alone in a fresh process so that neither sees the other's allocations.

FLOPs are counted from shapes: a convolution or linear layer is a GEMM of ``y.size * w.size / O``
multiply-adds (each output element reads one filter); FLOPs = 2 x MACs forward, and backward does
one such product for each of x and w that needs a gradient. GFLOP/s is measured against the sgemm
peak above ("% peak").

``--against torch`` builds the same network in PyTorch. It does not re-describe the network: it
records the tape of tinyalex ops that one forward pass of the model calls (a ``graph.Watcher``)
and replays that tape with the matching ``torch.nn.functional`` calls on copies of
the same weights, so layers, shapes, groups, LRN constants and dropout rates cannot drift apart.
Both sides run in one process, float32, with the same thread count, in interleaved rounds
(tinyalex, torch, tinyalex, torch, ...) so that the noise of a shared machine falls on both alike;
warm-up rounds are dropped and medians reported. The speed ratio is torch time / tinyalex time:
above 1, tinyalex is faster.

On a GPU the times are taken with CUDA events after a synchronisation (CuPy's for tinyalex,
PyTorch's for torch), TF32 is switched off in PyTorch, as CuPy does by default. That code path is
written to be obviously right but has not been run yet.

One file per idea: ``clocks`` (timers, interleaved rounds), ``tape`` (the recorded forward pass),
``step`` (the model and its training step), ``ops`` (per-op lines and FLOPs), ``twin`` (PyTorch),
``sgemm`` (the peak), ``memory`` (a step's memory, in a fresh process), ``machine``, ``report``, ``cli``.
"""
from .cli import main, parse_args, run
from .clocks import CPU_PAUSE_S, clock, interleaved, pause_for
from .machine import blas_threads, machine
from .memory import bench_memory, step_memory
from .ops import LINES, bench_ops, breakdown, gemm_flops, op_lines, step_flops, tinyalex_op_round, torch_op_round
from .report import print_report, row, write_json
from .sgemm import SGEMM_SIZE, bench_sgemm
from .step import MODELS, SGD, bench_step, build, default_batch, loss_of, train_step
from .tape import Tape, record
from .twin import TorchTwin, dropout_p, grouped, import_torch, to_torch, torch_ops, twin_of
