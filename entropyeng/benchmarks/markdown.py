"""The benchmark's tables as Markdown (``entropyeng bench --markdown DIR``): one file per section,
``DIR/<section>.md``, headed by the machine and the date, for the docs to include as they are (so a
figure in the docs is one a run printed, never one edited by hand)."""

from __future__ import annotations

import datetime
import math
import os
import platform

__all__ = ["machine", "write"]


def machine(isa: str) -> str:
    """One line: CPU model, cores, the kernels' ISA level, torch's version."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, kernels at {isa}, torch {torch.__version__}"


def _us(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _table(head, rows) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if k == 0 else "---:" for k in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _kernels(r) -> list[str]:
    lines = _table(["kernel", "cpp, µs", "torch reference, µs", "speed-up"],
                   [(x["kernel"], _us(x["cpp_us"]), _us(x["torch_us"]), f"{x['speedup']:.0f}×") for x in r["rows"]])
    lines += ["", f"The float32 Langevin step over 10^6 parameters moves 20 MB at {r['langevin_gbps']:.1f} GB/s: "
                  f"{r['langevin_over_dram']:.2f}× the time of a DRAM-bound copy of the same bytes "
                  f"({r['dram_gbps']:.1f} GB/s here)."]
    return lines


def _wlmc(r) -> list[str]:
    rows = []
    for label, key in (("engine (cpp, incremental forward)", "cpp_us"),
                       ("torch reference (full forward a move)", "torch_us"),
                       ("numba peer (full forward)", "numba_us"), ("engine, full recompute", "full_recompute_us")):
        relu, tanh = r["ReLU"][key], r["Tanh"][key]
        adv = "" if key == "cpp_us" else f"{relu / r['ReLU']['cpp_us']:.1f}×"
        rows.append((label, _us(relu), _us(tanh), adv))
    lines = _table(["WLMC, spiral 4×8 (249 parameters, 40 + 40 points)", "ReLU, µs/step", "tanh, µs/step",
                    "engine's advantage (ReLU)"], rows)
    lines += ["", "µs per step (cpp, ReLU) by network and data size (train = test = N):", ""]
    lines += _table(["network", "N = 40", "N = 400", "N = 4000"],
                    [(name, *(_us(c) for c in cells)) for name, cells in r["table"].items()])
    lines += ["", f"The paper's spiral protocol (1.9·10^11 steps) at this speed: "
                  f"{r['paper_protocol_core_hours']:,.0f} core-hours."]
    return lines


def _wlmd(r) -> list[str]:
    rows = r["spiral"]
    base = rows["paper-style torch script, float64"]
    lines = _table(["WLMD step, spiral regression W = 30 (1,051 parameters, 250 + 250 points, 2000×2000 grid)",
                    "µs", "vs paper-style float64"],
                   [(label, _us(us), f"{base / us:.2f}×") for label, us in rows.items()])
    if "short_run_us" in r:
        lines += ["", f"A new sampler's 1,000-step run: {r['short_run_us']:.1f} µs a step; a fresh process's first 300 "
                      f"steps (imports and set-up included): {r['fresh_process_s']:.2f} s. Native float32, µs per "
                      "walker-step: " + ", ".join(f"{k} {v:.1f}" for k, v in r["walkers"].items()) + ". The MLP "
                      f"kernel (forward + backward, W = 30, 500 rows, float32): {r['mlp_gflops']:.1f} GFLOP/s"
                      + (f", {100 * r['mlp_gflops'] / r['fma_peak_gflops']:.0f} % of an estimated "
                         f"{r['fma_peak_gflops']:.0f} GFLOP/s FMA peak" if r.get("fma_peak_gflops") else "")
                      + (f" (the clock timed at {r['clock_ghz']:.2f} GHz)" if r.get("clock_ghz") else "") + "."]
    lines += ["", "Targets: " + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in r["targets"].items()) + ".",
              "", "MNIST-size CNN (362 parameters, 250 + 250 images 28×28): "
              + ", ".join(f"{label} {_us(us)} µs" for label, us in r["cnn"].items()) + "."]
    for label, t in r.get("tasks", {}).items():
        lines += ["", f"{label[0].upper() + label[1:]}, its task's data and dtype: native step {_us(t['native'])} µs, "
                      f"compiled step (blocks of 4, as a run of the task's default length) {_us(t['compiled'])} µs "
                      f"({t['compiled'] / t['native']:.2f}×)."]
    return lines


def _walkers(r) -> list[str]:
    lines = _table(["WLMD walkers (spiral regression W = 30, float32), or WLMC", "walker-steps/s"],
                   [(label, f"{rate:,.0f}") for label, rate in r.items()])
    ratio = []
    one = next((v for k, v in r.items() if k.startswith("K=1 ") and "best of 3" in k), None)
    for k, v in r.items():
        if k.startswith("K=64 ") and "best of 3" in k and one:
            ratio.append(f"{k.split(',')[-2].strip()} K = 64 / K = 1: {v / one:.2f}×")
    if "P=1" in r and "P=2" in r:
        ratio.append(f"2 processes / 1: {r['P=2'] / r['P=1']:.2f}×")
    for what in ("REWL", "WLMC walkers"):
        if f"{what} threads=1" in r:
            ratio.append(f"{what} 2 threads / 1: {r[f'{what} threads=2'] / r[f'{what} threads=1']:.2f}×")
    return lines + ["", "Ratios: " + "; ".join(ratio) + "."]


def _sweep(r) -> list[str]:
    return [f"{r['runs']} runs on a local Dask cluster of {r['workers']} workers: {r['sweep_seconds']:.1f} s; the same "
            f"runs one after another: {r['serial_seconds']:.1f} s; the sweep took "
            f"{r['sweep_seconds'] / (r['serial_seconds'] / r['workers']):.3f}× the ideal 1/{r['workers']}."]


_WRITERS = {"kernels": _kernels, "wlmc": _wlmc, "wlmd": _wlmd, "walkers": _walkers, "sweep": _sweep}


def write(result: dict, directory: str, isa: str, command: str) -> list[str]:
    """Write ``directory/<section>.md`` for each section of ``result`` that has a table; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    stamp = (f"*Measured {datetime.date.today().isoformat()} on {machine(isa)}, one thread unless said; "
             f"written by `{command}`.*")
    paths = []
    for section, data in result.items():
        if section not in _WRITERS:
            continue
        path = os.path.join(directory, f"{section}.md")
        with open(path, "w") as fh:
            fh.write("\n".join([stamp, "", *_WRITERS[section](data)]) + "\n")
        paths.append(path)
    return paths
