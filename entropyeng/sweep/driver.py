"""A sweep's runs on Dask.distributed: an embedded ``LocalCluster`` by default, or a running cluster
(``--scheduler ADDRESS``; its workers need the run directories on a shared file system).

The sweep is idempotent: finished runs are kept, unfinished ones continue from their checkpoints,
so running the same command again after any failure completes it. A run's directory holds the
config the spec gives it; a spec that now gives another config is refused (one line), never run
over a user's results."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from .._io import write_atomic
from ..runs.config import ConfigError
from .board import Board, RunState
from .job import run_job, summary_of
from .spec import Spec

__all__ = ["run_sweep", "plan_dirs", "needs_gpu"]


def needs_gpu(config) -> bool:
    return str(config.get("model", {}).get("device", "cpu")).startswith("cuda")


def plan_dirs(spec: Spec, out: str) -> list:
    """Each run's state and directory; refuses a directory whose config.toml is not the spec's."""
    states = []
    for plan in spec.runs:
        d = os.path.join(out, plan.name)
        cfg = os.path.join(d, "config.toml")
        if os.path.exists(d) and not os.path.isdir(d):
            raise ConfigError(f"'{d}' is a file, not a run directory")
        if os.path.exists(cfg):
            with open(cfg) as fh:
                if fh.read() != plan.config_text:
                    raise ConfigError(f"'{d}' holds a run of another config than the spec gives it (the spec "
                                      "changed?); sweep into another --out, or move that directory away")
        state = RunState(plan, d)
        state.summary = summary_of(d)
        if state.summary is not None:
            state.state = "kept"
        states.append(state)
    return states


#: seconds to wait for a scheduler's answer (Dask's own connect timeout does not cover a listener that
#: accepts the connection and then stays silent)
SCHEDULER_TIMEOUT_S = 30.0


def _connect(Client, scheduler):
    """A Dask client of ``scheduler``, or ConfigError within SCHEDULER_TIMEOUT_S (the attempt runs on a
    daemon thread, so a scheduler that never answers does not hold the process)."""
    import threading

    result = {}

    def attempt():
        try:
            result["client"] = Client(scheduler, timeout=f"{max(1, int(SCHEDULER_TIMEOUT_S) - 5)}s")
        except Exception as e:  # noqa: BLE001 (any failure to connect is the one line below)
            result["error"] = e

    thread = threading.Thread(target=attempt, daemon=True, name="entropyeng-scheduler-connect")
    thread.start()
    thread.join(SCHEDULER_TIMEOUT_S)
    if "client" in result:
        return result["client"]
    why = f"{type(result['error']).__name__}: {str(result['error'])[:160]}" if "error" in result else \
        f"no answer within {SCHEDULER_TIMEOUT_S:g} s"
    raise ConfigError(f"--scheduler: cannot reach '{scheduler}' ({why})")


def _client(scheduler, workers, threads, any_gpu):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("entropyeng sweep runs on Dask: pip install 'entropyeng[sweep]' "
                          "(dask.distributed)") from None
    if scheduler:
        client = _connect(Client, scheduler)
        if any_gpu and not any(w.get("resources", {}).get("GPU") for w in client.scheduler_info()["workers"].values()):
            client.close()
            raise ConfigError("the spec's runs need a GPU (model.device = cuda) and no worker of the cluster offers "
                              "one: start GPU workers with 'dask worker ADDRESS --resources GPU=1'")
        return client, None, client.dashboard_link
    resources = None
    if any_gpu:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("the spec's runs need a GPU (model.device = cuda) and this machine has none")
        resources = {"GPU": 1}
    n = workers or max(1, (os.cpu_count() or 1) // threads)
    try:
        import bokeh  # noqa: F401 (the dashboard needs it)

        dashboard = ":0"
    except ImportError:
        dashboard = None
    import dask

    # one run per worker thread at a time: a worker holds no queue of runs that another could start
    # (for this cluster's scheduler only: the caller's Dask configuration is left as it was)
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=dashboard,
                               resources=resources, silence_logs=logging.ERROR)
    client = Client(cluster)
    return client, cluster, client.dashboard_link if dashboard else None


def run_sweep(spec: Spec, out: str, *, workers=None, scheduler=None, threads=None, retries=3, progress=True,
              interval=30.0) -> list:
    """Every run of ``spec`` under ``out`` (see the module docstring); returns the runs' states."""
    threads = threads or spec.threads
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: '{out}' is a file, not a directory")
    runs = plan_dirs(spec, out)
    todo = [r for r in runs if r.state != "kept"]
    os.makedirs(out, exist_ok=True)
    board = Board(out, spec, runs, enabled=progress, interval=interval)
    if not todo:
        board.write_json()
        board.say(f"sweep {spec.task}: all {len(runs)} runs finished in '{out}'; nothing to do")
        return runs
    client, cluster, dashboard = _client(scheduler, workers, threads, any(needs_gpu(r.plan.config) for r in todo))
    try:
        return _drive(client, board, runs, todo, threads, retries, dashboard)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _drive(client, board, runs, todo, threads, retries, dashboard):
    from dask.distributed import wait

    board.cluster = client.scheduler.address if client.scheduler else None
    workers = len(client.scheduler_info()["workers"])
    board.say(f"sweep {board.spec.task}: {len(todo)} of {len(runs)} runs to do on {workers} "
              f"workers ({board.cluster})" + (f"; dashboard {dashboard}" if dashboard else ""))
    futures = {}
    for r in todo:
        os.makedirs(r.dir, exist_ok=True)
        if not os.path.exists(os.path.join(r.dir, "config.toml")):
            write_atomic(os.path.join(r.dir, "config.toml"), r.plan.config_text.encode())
        f = client.submit(run_job, os.path.abspath(r.dir), threads, key=f"entropyeng-run-{r.name}-{time.time_ns()}",
                          pure=False, retries=retries, resources={"GPU": 1} if needs_gpu(r.plan.config) else None)
        futures[f.key] = (f, r)
    submitted = time.time() - 1.0
    board.write_json()
    pending = {f for f, _ in futures.values()}
    tick = min(board.interval, 2.0)
    while pending:
        try:
            done, pending = wait(pending, timeout=tick, return_when="FIRST_COMPLETED")
        except (TimeoutError, asyncio.TimeoutError):  # nothing finished in this tick
            done = set()
        now = time.time()
        active = {k for keys in client.processing().values() for k in keys}
        for f, r in futures.values():
            if f in done or r.state in ("done", "kept", "failed"):
                continue
            if f.key in active and r.state != "running" and _log_since(r.dir, submitted):
                r.state, r.started = "running", r.started or time.strftime("%Y-%m-%d %H:%M:%S")
            if r.state == "running":
                r.observe(now)
                r.attempts = _starts(r.dir)  # a retried run's log has a start line more
        for f in done:
            r = futures[f.key][1]
            _settle(f, r, board)
        board.write_json()
        board.show(force=bool(done) and not board.tty)
    if board.tty:
        board.show()
    failed = [r for r in runs if r.state == "failed"]
    for r in failed:
        board.say(f"failed: {r.name}: {r.error}")
    board.say(f"sweep {board.spec.task}: {sum(r.state in ('done', 'kept') for r in runs)} of {len(runs)} runs finished"
              + (f", {len(failed)} failed (run the same command again to retry them)" if failed else "")
              + f"; {os.path.join(board.out, 'sweep.json')}")
    return runs


def _log_since(directory, t):
    """Whether the run's log was written since ``t``: its job has started (a task the scheduler has
    given a worker may still wait in that worker's queue)."""
    try:
        return os.stat(os.path.join(directory, "run.log")).st_mtime >= t
    except OSError:
        return False


def _starts(directory):
    """How many times a job started this run (its log's "== " lines, one a start, over all sweeps)."""
    try:
        with open(os.path.join(directory, "run.log")) as fh:
            return sum(line.startswith("== ") for line in fh)
    except OSError:
        return 0


def _settle(future, r, board):
    r.finished = time.strftime("%Y-%m-%d %H:%M:%S")
    r.attempts = _starts(r.dir)
    try:
        result = future.result()
    except Exception as e:  # noqa: BLE001 (a killed worker too often, a run killed too often: the run failed)
        r.state, r.error = "failed", f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        return
    r.state = result["state"]
    r.wall = result.get("wall")
    r.summary = result.get("summary")
    r.error = result.get("error")
    if r.state == "failed":
        r.error = f"exit code {result.get('exit_code')}: {r.error} (see {os.path.join(r.dir, 'run.log')})"
