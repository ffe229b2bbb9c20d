"""The WLMD step of a paper task's default network, data and form, in thread CPU time per step: the
A/B tool for comparing two versions of the engine on one machine in one sitting (for instance the
native step against the version before it). It runs on this version's API and on that of
2026-12-06 morning (``entropyeng.cli``), so it builds the sampler itself rather than through
``entropyeng.benchmarks.wlmd_cases.task_step_us``, which older versions lack; with ``--avx2`` it
caps MKL and oneDNN at AVX2 and inductor's vectors at 256 bits (set ENTROPYENG_MAX_ISA=v3 for the
engine's kernels).

    python -P bench/task_step.py digits 2          # the 8 x 8 digits CNN, 2 channels
    python -P bench/task_step.py house 20 --avx2   # the house network, W = 20

An older build to compare with, beside the editable one (which would shadow it): check it out with
``git worktree add --detach /tmp/old REV``, install it with ``pip install --no-build-isolation
--no-deps --target /tmp/oldpkg /tmp/old``, and run this script with ``python -S -P`` and
``--path /tmp/oldpkg`` (sys.path then holds that build, then this venv's site-packages).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task", help="digits or house (or another WLMD task)")
    p.add_argument("size", type=int, help="digits: channels; others: model.width")
    p.add_argument("--rounds", type=int, default=25, help="rounds of 64 steps (the best and quartiles are printed)")
    p.add_argument("--avx2", action="store_true", help="MKL, oneDNN and inductor at AVX2 (see the module's text)")
    p.add_argument("--path", help="a build to import instead of this venv's (run with python -S -P)")
    args = p.parse_args(argv)
    if args.path:  # (under -S the venv is not set up: its site-packages from the interpreter's path)
        venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        sys.path[:0] = [args.path, os.path.join(venv, "lib", ver, "site-packages")]
    if args.avx2:
        os.environ.update({"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    import torch

    torch.set_num_threads(1)
    if args.avx2:
        import torch._inductor.config as inductor

        inductor.cpp.simdlen = 256
    try:
        from entropyeng.runs.build import new_sampler, total_steps
        from entropyeng.runs.config import load_config
    except ImportError:  # the API of 2026-12-06 morning
        from entropyeng.cli.config import load_config
        from entropyeng.cli.runloop import new_sampler, total_steps
    import entropyeng
    from entropyeng.tasks.catalog import build

    sets = [f"model.channels={args.size}"] if args.task == "digits" else [f"model.width={args.size}"]
    config = load_config(args.task, sets, data=None)
    problem = build(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = new_sampler(config, problem)
    s.planned_steps = total_steps(config)  # the step a run of the default length takes
    s.run(3)  # (compiles, where the form is compiled)
    s.run(60)
    times = []
    for _ in range(args.rounds):
        t0 = time.thread_time()
        s.run(64)
        times.append((time.thread_time() - t0) / 64 * 1e6)
    times.sort()
    print(f"{args.task} {args.size} ({os.path.dirname(entropyeng.__file__)}, {getattr(s, 'step_form', '?')}, kernels "
          f"{os.environ.get('ENTROPYENG_MAX_ISA', 'best')}): best {times[0]:.1f}, quartile {times[len(times) // 4]:.1f}, "
          f"median {times[len(times) // 2]:.1f} us a step")


if __name__ == "__main__":
    main()
