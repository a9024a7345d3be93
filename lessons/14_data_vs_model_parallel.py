# %% [markdown]
# # Lesson 14: many GPUs, data parallelism against model parallelism (AlexNet 3.2, VGG 3.3)
#
# **The claims.** The two papers spread one network over several GPUs in the two possible ways.
#
# - **Model parallelism** (AlexNet section 3.2): a GTX 580 had 3 GB, too little for the network, so
#   "we put half of the kernels (or neurons) on each GPU, with one additional trick: the GPUs
#   communicate only in certain layers" (before conv3, fc6, fc7 and fc8; lesson 03). Both GPUs see
#   every image; what crosses between them is the maps at those layers, forward, and their gradients,
#   backward.
# - **Data parallelism** (VGG section 3.3): "each batch of training images is split into several GPU
#   batches, processed in parallel on each GPU. After the GPU batch gradients are computed, they are
#   averaged to obtain the gradient of the full batch." Every GPU holds the whole network; what
#   crosses is every gradient, once a step. On four Titan Blacks this gave "a speedup of 3.75 times
#   ... as compared to using a single GPU", and a net trained in 2-3 weeks.
#
# **The equations.** Data parallelism on N processes all-reduces the gradients, S bytes (4 per
# parameter in float32), whatever the batch. A ring all-reduce (reduce-scatter, then all-gather)
# takes 2 (N - 1) steps, in each of which every process sends S / N bytes to its neighbour, so
#
#     t_allreduce(S, N) = 2 (N - 1) (latency + S / (N * bandwidth))       each process sends 2 (N-1)/N S
#
# Model parallelism in two columns sends, per image, the maps of its half at each crossing
# (forward) and the gradients of the other half's maps back (backward): m values per image, so
# 4 m B bytes for a batch of B, growing with the batch. A step of a batch that one process computes
# in t_compute seconds then takes, if the compute splits perfectly and nothing overlaps,
#
#     t(N) = t_compute / N + t_allreduce(S, N)               speedup(N) = t_compute / t(N)
#
# **The code.** `tinyalex/distributed.py` (`init`, `AveragedGradients`: one flat all-reduce per bucket
# of gradients, over MPI through mpi4py) and `tinyalex/model_parallel.py` (`own_column(net)`: this
# process's column of the two-column net; `Exchange` at the crossings); `mpiexec -n N tinyalex train`
# trains data-parallel, `mpiexec -n 2 tinyalex train --model-parallel columns` model-parallel. This
# lesson starts `mpiexec -n 2` itself to time both.

# %%
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import common
import tinyalex as ta
from tinyalex import models

lesson = common.Lesson("14", "many GPUs: data and model parallelism", "AlexNet section 3.2, VGG section 3.3",
                       runs={"quick": ("the counts of AlexNet and VGG-16, and on 2 processes one step of a 1/16-width "
                                       "AlexNet-CIFAR, batch 8, each way, and MPI all-reduces up to 4 MB", "10 s"),
                             "default": ("the same with the full-width AlexNet-CIFAR, batch 128, and all-reduces up "
                                         "to 64 MB", "30 s")})

# %% [markdown]
# ## 1. What crosses the wire in a step, counted from the models
#
# Data parallelism sends the gradients: as many values as parameters. Model parallelism sends maps:
# one forward pass of the paper's two-column AlexNet on one image lists in `net.transfers` what each
# column hands the other at each crossing (lesson 03). Under `model_parallel` both processes then
# swap their halves of the scores so that both compute the loss; backward, each crossing sends the
# gradients of the other column's maps back, and the scores none (both processes computed the same
# loss: `Exchange(replicated=True)`).

# %%
FLOAT32 = 4  # bytes


def per_image_exchange(net, image_shape):
    """{crossing: values one column sends the other per image, forward} of the two-column ``net``,
    from one forward pass; "output" is its half of the scores."""
    net.eval()
    with ta.no_grad():
        net(ta.tensor(np.zeros((1, *image_shape), np.float32)))
    return {t.before: t.nbytes // FLOAT32 for t in net.transfers if t.source == 1}  # column 1 sends at every crossing


def counts(net, image_shape):
    """What one process sends in a training step: ``gradient_bytes`` (data parallelism) and
    ``sent_per_image_bytes`` (model parallelism: maps forward, their gradients back, per image)."""
    exchange = per_image_exchange(net, image_shape)
    forward, backward = sum(exchange.values()), sum(v for k, v in exchange.items() if k != "output")
    parameters = net.num_parameters()
    return {"parameters": parameters, "gradient_bytes": FLOAT32 * parameters, "exchange_per_image": exchange,
            "sent_per_image_bytes": FLOAT32 * (forward + backward),
            "crossover_batch": parameters / (forward + backward)}  # N = 2: 2 (N-1)/N S = S


paper_net = models.alexnet(columns=2, init=None)  # zeros: nothing is drawn, nothing trained
alexnet = counts(paper_net, (3, 227, 227))
layers = ta.summary(paper_net, (3, 227, 227), print_table=False)
conv = [r for r in layers.rows if r.kind == "Conv2d"]
alexnet["conv_share"] = {"parameters": sum(r.parameters for r in conv) / layers.total_parameters,
                         "multiply_adds": sum(r.multiply_adds for r in conv) / layers.total_multiply_adds}
del paper_net  # 244 MB (and below 553 MB) of zeros, not needed by the timed runs
vgg16 = models.vgg("D", init=None)
vgg = {"parameters": vgg16.num_parameters(), "gradient_bytes": FLOAT32 * vgg16.num_parameters(),
       "multiply_adds": ta.summary(vgg16, (3, 224, 224), print_table=False).total_multiply_adds}
del vgg16
print(common.table([(k, v, 2 * v if k != "output" else v) for k, v in alexnet["exchange_per_image"].items()],
                   ("AlexNet crossing", "values each column sends per image, forward", "both columns, forward")))
print(f"per image and process: {alexnet['sent_per_image_bytes'] // FLOAT32:,} values forward + back = "
      f"{alexnet['sent_per_image_bytes'] / 1e3:.1f} kB")
print(f"AlexNet: {alexnet['parameters']:,} parameters = {alexnet['gradient_bytes'] / 1e6:.1f} MB of float32 gradients; "
      f"VGG-16: {vgg['parameters']:,} = {vgg['gradient_bytes'] / 1e6:.1f} MB")
print(f"AlexNet's conv layers hold {alexnet['conv_share']['parameters']:.1%} of its parameters and do "
      f"{alexnet['conv_share']['multiply_adds']:.1%} of its multiply-adds")

# %% [markdown]
# Per process and step, for two processes (each sends 2 (N-1)/N S = S in the all-reduce):

# %%
rows = [(batch, f"{alexnet['gradient_bytes'] / 1e6:.1f} MB", f"{batch * alexnet['sent_per_image_bytes'] / 1e6:.1f} MB",
         f"{alexnet['gradient_bytes'] / (batch * alexnet['sent_per_image_bytes']):.1f}")
        for batch in (1, 32, 128, 256, 1024, 4096)]
print(common.table(rows, ("batch", "data parallel: all-reduce", "model parallel: exchanges", "data / model")))
print(f"they cross at a batch of {alexnet['crossover_batch']:.0f} images; the paper's 128 sends "
      f"{alexnet['gradient_bytes'] / (128 * alexnet['sent_per_image_bytes']):.1f}x fewer bytes in two columns. "
      f"VGG-16 on 4 GPUs: each sends 2 x 3/4 x {vgg['gradient_bytes'] / 1e6:.0f} MB = "
      f"{1.5 * vgg['gradient_bytes'] / 1e6:.0f} MB a step")
lesson.record(alexnet=alexnet, vgg16=vgg)

# %% [markdown]
# At the paper's batch of 128 the columns send about 8x fewer bytes than an all-reduce would, and the
# saving holds up to about a thousand images a batch. Model parallelism also splits the memory: each
# GPU holds half the weights (and their gradients and momentum), while data parallelism keeps a full
# copy on every GPU. Its cost is elsewhere: every layer must be cut in two, the columns wait for
# each other at every crossing, and two columns do not make eight.
#
# `alexnet` and `vgg16` in `14_results.json`: `parameters`, `gradient_bytes` (float32), for AlexNet
# `exchange_per_image` ({crossing: values one column sends per image, forward}), `sent_per_image_bytes`
# (one process, forward and backward), `crossover_batch` (two processes: the batch at which the
# exchanges equal one all-reduce) and `conv_share` (the conv layers' share of the `parameters` and
# of the `multiply_adds`), for VGG-16 `multiply_adds` (one 224x224 image, forward).
#
# ## 2. Measured on two processes
#
# The script below runs once as one process and once under `mpiexec -n 2`. Every process builds the
# same AlexNet-CIFAR (same seed: same weights) and the same random batch; each step is a forward, the
# loss, a backward and the paper's SGD update, with one BLAS thread per process (a process stands
# for one GPU). One process times the whole batch. Two processes time, one after the other:
# data parallelism (each its half of the batch, `AveragedGradients`), the all-reduce of the gradients
# alone (`average_gradients`), model parallelism (`own_column`: each its column, on the whole batch),
# and MPI's all-reduce of plain float32 buffers of a few sizes. Each time is the fastest of a few
# runs, from the start on all processes to the end of the slowest.

# %%
STEP_TIMES = '''
import json
import sys
import time

import numpy as np

import tinyalex as ta
from tinyalex import backend, distributed, model_parallel, models, optim
from tinyalex import functional as F

width, batch, repeats, wire_repeats = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
buffers = [int(b) for b in sys.argv[5].split(",")]
N, rank = distributed.init(), distributed.rank()
rng = np.random.default_rng(1)  # the same images and labels on every process
images = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, batch)


def together():
    if N > 1:
        from mpi4py import MPI
        MPI.COMM_WORLD.Barrier()


def fastest(work, repeats=repeats):
    """Seconds of the least disturbed of `repeats` runs of work(), after one to warm up."""
    work()
    seconds = []
    for _ in range(repeats):
        together()
        start = time.perf_counter()
        work()
        together()  # a step ends when the slowest process is done
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def net():
    backend.manual_seed(0)  # the same weights on every process
    return models.alexnet_cifar(width=width)


def step_seconds(model, optimizer, images, labels):
    x = ta.tensor(images)

    def step():
        model.zero_grad()
        F.softmax_cross_entropy(model(x), labels).backward()
        optimizer.step()
    return fastest(step)


times = {}
if N == 1:
    model = net()
    times["one"] = step_seconds(model, optim.SGD(model.parameters(), 0.01), images, labels)
else:
    from mpi4py import MPI
    model = net()
    mine = slice(rank * batch // N, (rank + 1) * batch // N)
    sgd = distributed.AveragedGradients(optim.SGD(model.parameters(), 0.01))
    times["data"] = step_seconds(model, sgd, images[mine], labels[mine])
    times["average_gradients"] = fastest(lambda: distributed.average_gradients(sgd.params))
    column = model_parallel.own_column(net())
    times["model"] = step_seconds(column, optim.SGD(column.parameters(), 0.01), images, labels)
    times["allreduce"] = {}
    for nbytes in buffers:
        buffer = np.zeros(nbytes // 4, np.float32)
        times["allreduce"][nbytes] = fastest(lambda: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM),
                                             wire_repeats)
if rank == 0:
    print(json.dumps(times))
'''

width = lesson.pick(quick=1 / 16, default=1.0)
batch = lesson.pick(quick=8, default=128)
repeats = lesson.pick(quick=3, default=3)
wire_repeats = 20  # an all-reduce takes microseconds to milliseconds: more tries, fewer of them disturbed
buffers = lesson.pick(quick=(4096, 262_144, 4 << 20), default=(4096, 65_536, 1 << 20, 16 << 20, 64 << 20))
timeout = lesson.pick(quick=120, default=600)  # seconds; only stops a hung run
settings = {"width": width, "batch": batch, "repeats": repeats, "wire_repeats": wire_repeats, "buffers": buffers,
            "blas_threads": 1}
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
missing = ("mpi4py is not installed" if importlib.util.find_spec("mpi4py") is None
           else "there is no mpiexec" if MPIEXEC is None else None)


def shown(seconds):
    """A time in seconds as text, in the unit that suits it (s, ms or us), 3 significant digits."""
    unit, scale = next((u, k) for u, k in (("s", 1), ("ms", 1e-3), ("us", 1e-6)) if seconds >= k or u == "us")
    value = seconds / scale
    return f"{value:.{max(0, 2 - int(np.floor(np.log10(value))))}f} {unit}"


def run(processes, threads=1):
    """The seconds that STEP_TIMES measured in ``processes`` processes of ``threads`` BLAS (and
    tinyalex) threads each (rank 0's JSON line)."""
    command = [sys.executable, "-c", STEP_TIMES, *map(str, (width, batch, repeats, wire_repeats)),
               ",".join(map(str, buffers))]
    if processes > 1:
        command = [MPIEXEC, "-n", str(processes)] + command
    root = str(Path(ta.__file__).resolve().parents[1])  # the children import this very tinyalex
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
           "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "TINYALEX_NUM_THREADS": str(threads)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"STEP_TIMES on {processes} process(es) failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


small = counts(models.alexnet_cifar(width=width), (3, 32, 32))
if missing:
    print(f"SKIPPED the measurements: {missing} (pip install -e '.[mpi]' brings both); the counts and the "
          "VGG model below still run")
    measured = None
else:
    measured = {**run(1), **run(2), "one_two_threads": run(1, threads=2)["one"]}
    measured["allreduce"] = {int(k): v for k, v in measured["allreduce"].items()}
lesson.record(settings=settings, tinyalex=small, measured=measured)

# %% [markdown]
# `settings`: `width`, `batch` (the global batch), `repeats` (of a step), `wire_repeats` (of an
# all-reduce), `buffers` (bytes), `blas_threads` (of each process; `one_two_threads` below has 2);
# `tinyalex`: the counts of section 1 for this AlexNet-CIFAR; `measured` (null when skipped): seconds
# of a step `one` (one process, the whole batch), `one_two_threads` (the same with two threads, the
# other way to use two cores), `data` (two processes, half each),
# `average_gradients` (the data-parallel all-reduce alone), `model` (two columns on two processes),
# and `allreduce` ({bytes: seconds} of MPI_Allreduce on one float32 buffer).
#
# These numbers are those of the run that printed them, and two processes need a core each: beside
# another job their timings say little. A quiet 2-core CPU's are in BENCHMARKS.md, "Several processes".
# The all-reduce runs through shared memory here, not between GPUs.

# %%
if measured:
    rows = [(f"{nbytes:,}", shown(seconds), f"{nbytes / seconds / 1e9:.2f} GB/s")
            for nbytes, seconds in measured["allreduce"].items()]
    print(common.table(rows, ("MPI_Allreduce of (bytes)", "time", "bandwidth (each process sends S, N = 2)")))
    one, data, model = measured["one"], measured["data"], measured["model"]
    two_threads, reduce = measured["one_two_threads"], measured["average_gradients"]
    print(common.table([(name, shown(t), f"{batch / t:.0f}", f"{one / t:.2f}x") for name, t in
                        (("1 process x 1 thread, whole batch", one), ("1 process x 2 threads", two_threads),
                         ("2 processes x 1 thread, data parallel (half each)", data),
                         ("2 processes x 1 thread, model parallel (a column each)", model))],
                       (f"a step of AlexNet-CIFAR, width {width:g}, batch {batch}", "time", "images/s", "speedup")))
    print(f"the all-reduce of the gradients (average_gradients, {shown(reduce)}) is {reduce / data:.1%} of the "
          "data-parallel step")
print(f"this AlexNet-CIFAR: {small['parameters']:,} parameters, {small['gradient_bytes'] / 1e6:.2f} MB of gradients; "
      f"its columns send {small['sent_per_image_bytes'] / 1e3:.1f} kB per image and process; they cross at a batch of "
      f"{small['crossover_batch']:.0f}")

# %% [markdown]
# ## 3. A model of the step time
#
# The assumptions: the compute divides perfectly over the N processes (the same work, split); the
# all-reduce starts after the whole backward (no overlap of communication with compute, as
# `AveragedGradients` does it: after backward, before the update); the wire has one latency and one
# bandwidth, read off the all-reduces above (latency: half the time of the smallest buffer, whose
# bytes take next to no time, as a 2-process ring takes 2 steps; bandwidth: the largest buffer's
# bytes over the rest of its time); the exchanges of the columns see the same wire, 14 messages a
# step (forward, the maps at 4 crossings and the scores, each after its shape; 4 gradients back).
# `r` below is the time the gradients take to cross the wire once, S / bandwidth, over t_compute.

# %%
def ring_allreduce(S, N, bandwidth, latency=0.0):
    """Seconds of a ring all-reduce of S bytes over N processes: 2 (N - 1) steps, S / N bytes each."""
    return 2 * (N - 1) * (latency + S / (N * bandwidth))


def speedup(t_compute, N, S, bandwidth, latency=0.0):
    """t_compute / t(N) with t(N) = t_compute / N + ring_allreduce(S, N, ...): the compute split
    perfectly, the all-reduce after it."""
    return t_compute / (t_compute / N + ring_allreduce(S, N, bandwidth, latency))


WORLDS = (2, 4, 8, 64)
prediction = None
if measured:
    latency = measured["allreduce"][min(buffers)] / 2
    bandwidth = max(buffers) / (measured["allreduce"][max(buffers)] - 2 * latency)
    t1, S = measured["one"], small["gradient_bytes"]
    exchanges = batch * small["sent_per_image_bytes"] / bandwidth + 14 * latency
    prediction = {"latency_s": latency, "bandwidth_bytes_per_s": bandwidth, "r": S / bandwidth / t1,
                  "allreduce_s": ring_allreduce(S, 2, bandwidth, latency),
                  "data_step_s": t1 / 2 + ring_allreduce(S, 2, bandwidth, latency), "model_step_s": t1 / 2 + exchanges,
                  "speedup": {N: speedup(t1, N, S, bandwidth, latency) for N in WORLDS}}
    print(f"wire: latency {latency * 1e6:.1f} us, bandwidth {bandwidth / 1e9:.2f} GB/s; gradients {S / 1e6:.2f} MB, "
          f"r = {prediction['r']:.2e} = 1/{1 / prediction['r']:.0f}")
    print(common.table([("all-reduce of the gradients", shown(prediction["allreduce_s"]),
                         shown(measured["average_gradients"])),
                        ("data-parallel step", shown(prediction["data_step_s"]), shown(measured["data"])),
                        ("model-parallel step", shown(prediction["model_step_s"]), shown(measured["model"]))],
                       ("two processes", "the model", "measured")))
    print("predicted speedup of data parallelism, same global batch:",
          ", ".join(f"N = {N}: {s:.2f}x" for N, s in prediction["speedup"].items()))
lesson.record(prediction=prediction)

# %% [markdown]
# Where the measured steps are slower than the model, its first assumption failed: on a machine
# whose cores other jobs share, two processes do not get twice the compute. `average_gradients` also
# copies every gradient into one flat buffer and back, which the model leaves out.
#
# `prediction` (null when skipped): the wire's `latency_s` and `bandwidth_bytes_per_s`, `r` (the
# gradients' time on the wire over the one-process step), the model's `allreduce_s`, `data_step_s`
# and `model_step_s` for two processes, and `speedup` ({N: predicted data-parallel speedup}).
#
# ## 4. VGG's 3.75x on four GPUs
#
# VGG-16 (138 M parameters, 553 MB of gradients) on batches of 256, split over 4 Titan Blacks. We do
# not know the Titan Blacks' step time or their bus; the 3.75x fixes their ratio. With the latency
# left out (hundreds of MB a message), speedup(4) = 1 / (1/4 + 2 x 3/4 x r) = 3.75 gives r, and
# with times in units of the single-GPU step (t_compute = 1, bandwidth = S / r) the same r then
# predicts other N, with the same global batch of 256 (64 images a GPU at N = 4, 4 at N = 64) and
# the compute still dividing perfectly, which a GPU given 4 images would not do.

# %%
N, paper = 4, 3.75
r_vgg = (1 / paper - 1 / N) / (2 * (N - 1) / N)
per_step = vgg["gradient_bytes"] / r_vgg  # the bandwidth, in bytes per single-GPU step
vgg_model = {"r": r_vgg, "speedup": {n: speedup(1.0, n, vgg["gradient_bytes"], per_step) for n in WORLDS},
             "limit": 1 / (2 * r_vgg)}
print(f"r = {r_vgg:.4f} = 1/{1 / r_vgg:.0f}: sending the gradients once takes 1/{1 / r_vgg:.0f} of a single-GPU step")
print("predicted speedup:", ", ".join(f"N = {n}: {s:.2f}x" for n, s in vgg_model["speedup"].items()),
      f"(never above 1 / (2 r) = {vgg_model['limit']:.0f}x: the all-reduce stays while the compute shrinks)")

# %% [markdown]
# What that r means in seconds, from the paper's own numbers: training stopped after 370K
# iterations (VGG section 3.1) and took 2-3 weeks (3.3), so a 4-GPU step took at most 3.3-4.9 s
# (the weeks include testing and data loading), a single-GPU step 3.75 times that, and the
# bandwidth the 3.75x implies follows; the multiply-adds counted in section 1 (forward; backward
# does two products of the same size, for the maps and for the weights) give the arithmetic rate.

# %%
step_4 = np.array([2, 3]) * 7 * 24 * 3600 / 370_000
single = paper * step_4
flops = 2 * 3 * vgg["multiply_adds"] * 256
TITAN_BLACK_PEAK = 2880 * 0.889e9 * 2  # float32 FLOP/s: 2,880 cores at 889 MHz, a multiply-add each per cycle
titan = vgg_model["titan_black"] = {"step_4_gpus_s": step_4, "step_1_gpu_s": single,
                                    "bandwidth_bytes_per_s": per_step / single, "flops_per_gpu": flops / single,
                                    "share_of_peak": flops / single / TITAN_BLACK_PEAK}
print(common.table([("a step on 4 GPUs", *(f"{s:.1f} s" for s in step_4)),
                    ("a step on 1 GPU (x 3.75)", *(f"{s:.1f} s" for s in single)),
                    ("bandwidth implied (S / r t_1)", *(f"{b / 1e9:.1f} GB/s" for b in titan["bandwidth_bytes_per_s"])),
                    ("float32 rate of one GPU", *(f"{f / 1e12:.2f} TFLOP/s" for f in titan["flops_per_gpu"])),
                    ("of the Titan Black's peak", *(f"{p:.0%}" for p in titan["share_of_peak"]))],
                   ("VGG-16, batch 256", "2 weeks", "3 weeks")))
lesson.record(vgg16_model=vgg_model)

# %% [markdown]
# A few GB/s is below the 16 GB/s each way of the PCI Express 3.0 x16 slots of that time, as gradients
# copied through the host's memory would be, and a quarter to 40% of the peak is a usual rate for a
# whole training step: the 3.75x tells a consistent story, not a proof. AlexNet's numbers run the same
# way: at batch 128 its columns sent 31 MB per GPU and step where an all-reduce would have sent 244 MB,
# and each GPU would have held all 61 M weights. Krizhevsky's later "one weird trick" (2014, cited by
# VGG) takes both: data parallelism for the conv layers (few parameters, most of the arithmetic:
# `conv_share` in section 1) and model parallelism for the fully connected ones (most of the
# parameters, little arithmetic).
#
# `vgg16_model`: `r`, `speedup` ({N: predicted}), `limit` (1 / (2 r)) and `titan_black` (for 2 and 3
# weeks: `step_4_gpus_s`, `step_1_gpu_s`, `bandwidth_bytes_per_s`, `flops_per_gpu`, `share_of_peak`).
#
# The figure: left, the bytes each GPU sends per step against the batch; right, the predicted
# speedup against the number of GPUs, with the measured two-process points.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.5))
batches = np.logspace(0, 13, 100, base=2)
left.loglog(batches, np.full_like(batches, alexnet["gradient_bytes"]), "C0", label="AlexNet, data parallel, 2 GPUs")
left.loglog(batches, batches * alexnet["sent_per_image_bytes"], "C1", label="AlexNet, model parallel, 2 columns")
left.loglog(batches, np.full_like(batches, 1.5 * vgg["gradient_bytes"]), "C2", label="VGG-16, data parallel, 4 GPUs")
for style, sent, kind in (("C0:", np.full_like(batches, small["gradient_bytes"]), "data"),
                          ("C1:", batches * small["sent_per_image_bytes"], "model")):
    left.loglog(batches, sent, style, label=f"AlexNet-CIFAR (width {width:g}), {kind} parallel, the net timed here")
for x, label, style in ((alexnet["crossover_batch"], f" AlexNet's cross at {alexnet['crossover_batch']:.0f}", "-"),
                         (128, " AlexNet's 128", "--")):
    left.axvline(x, color="grey", lw=0.8, ls=style)
    left.text(x, 0.98, label, fontsize=8, va="top", transform=left.get_xaxis_transform())
left.set(xlabel="images per batch (the whole step)", ylabel="bytes each GPU sends per step",
         title="what crosses the wire, counted from the models")
left.legend(fontsize=7)
worlds = np.arange(1, 65)
right.plot(worlds, worlds, "k--", lw=0.8, label="perfect")
right.plot(worlds, [speedup(1.0, n, vgg["gradient_bytes"], per_step) for n in worlds], "C2",
           label=f"VGG-16, r = 1/{1 / r_vgg:.0f} (from 3.75x)")
right.plot([4], [paper], "C2o", label="VGG paper: 3.75x on 4")
if prediction:
    right.plot(worlds, [speedup(t1, n, S, bandwidth, latency) for n in worlds], "C0",
               label=f"tinyalex model (r = 1/{1 / prediction['r']:.0f}, measured wire)")
    right.plot([2], [measured["one"] / measured["data"]], "C0s", label="tinyalex measured, data parallel")
    right.plot([2], [measured["one"] / measured["model"]], "C1^", label="tinyalex measured, 2 columns")
powers = [1, 2, 4, 8, 16, 32, 64]
right.set(xscale="log", yscale="log", xticks=powers, yticks=powers, xticklabels=powers, yticklabels=powers,
          xlabel="GPUs (processes) N, same global batch", ylabel="speedup over one",
          title="t(N) = t_compute / N + ring all-reduce")
right.legend(fontsize=7)
lesson.save(fig, "parallelism")

# %%
lesson.done()
