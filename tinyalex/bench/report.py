"""The report: one row per line (ms, GFLOP/s, speed ratio), the printed table and the JSON file."""
import json
import sys

from ..io import atomic_write


def row(name, ms, flops, shape=(), kind=None):
    """One line of the report: median ms per framework, FLOPs, GFLOP/s and the speed ratio."""
    r = {"name": name, "kind": kind, "shape": "x".join(map(str, shape)), "flops": flops, "ms": ms,
         "gflops": {k: flops / v / 1e6 for k, v in ms.items()}}
    if "torch" in ms:
        r["speed_ratio"] = ms["torch"] / ms["tinyalex"]
    return r


def print_report(result, out=sys.stdout):
    """The results as a table: one line per op and phase, then the step and its memory."""
    m, peak = result["machine"], result["peak"]
    against = "torch" in peak["ms"]
    print(f"tinyalex bench: {result['model']}, batch {result['batch']}, "
          f"convolutions {result.get('algorithm', 'auto')}, {result['device']} "
          f"({m['cpu']}, {m['cores']} cores), {m['date']}", file=out)
    threads = m["numpy_blas_threads"] or "unknown; pip install threadpoolctl to read them"
    own = f", tinyalex threads: {m['tinyalex_threads']}" if "tinyalex_threads" in m else ""
    fused = ", fused SGD" if result.get("torch_sgd") == "fused" else ""
    print(f"numpy {m['numpy']} (BLAS: {', '.join(m.get('blas', [])) or 'unknown'}; threads: {threads}){own}"
          + (f", torch {m['torch']} ({m['torch_threads']} threads{fused})" if against else ""), file=out)
    header = f"{'line':<16}{'input shape':>16}{'tinyalex ms':>12}{'GFLOP/s':>9}{'% peak':>8}"
    print(header + (f"{'torch ms':>10}{'GFLOP/s':>9}{'speed':>8}" if against else ""), file=out)
    for r in [peak, *result.get("ops", []), *([result["step"]] if "step" in result else [])]:
        cells = f"{r['name']:<16}{r['shape']:>16}{r['ms']['tinyalex']:>12.2f}" + _gflops(r, "tinyalex")
        cells += f"{100 * r['gflops']['tinyalex'] / peak['gflops']['tinyalex']:>7.0f}%" if r["flops"] else f"{'':>8}"
        if against:
            cells += f"{r['ms']['torch']:>10.2f}" + _gflops(r, "torch") + f"{r['speed_ratio']:>8.2f}"
        print(cells, file=out)
    if "step" in result:
        print("images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in result["step"]["images_per_s"].items()), file=out)
    for framework, kinds in result.get("breakdown", {}).items():
        total = result["step"]["ms"][framework]
        print(f"{framework} step by kind: " + ", ".join(f"{k} {100 * ms / total:.0f}%" for k, ms in kinds.items()),
              file=out)
    if result.get("memory"):
        print("memory a step adds (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in result["memory"].items()),
              file=out)
    print("% peak: GFLOP/s over tinyalex's sgemm line"
          + ("; speed = torch ms / tinyalex ms (above 1: tinyalex is faster)" if against else ""), file=out)


def _gflops(r, framework):
    return f"{r['gflops'][framework]:>9.1f}" if r["flops"] else f"{'':>9}"


def write_json(result, path):
    """Write ``result`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    with atomic_write(path, "w") as f:
        json.dump(result, f, indent=1)
