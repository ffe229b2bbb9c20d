"""A run directory: its files (:func:`run_paths`), the digest that ties a checkpoint to its run
(:func:`run_digest`), and its protection: one run at a time (an exclusive lock for the life of a run or a
resume), and no file of a user's lost to a run started in the wrong place.

The lock is a file ``.entropyeng.lock`` in the directory holding the owner's pid, host and start
time, held with ``fcntl.flock`` while the run lives (the operating system releases it when the
process dies, however it dies). A second run or resume of the directory is refused at once, naming
the owner. A lock file left behind by a process that is gone is taken over with a line saying so:
on this host when its flock is free; a lock file written on another host is refused (that host may
still be running it on a shared file system; delete the file if you know it is not)."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time

from .._io import hash_arrays, open_nofollow

__all__ = ["LOCK_NAME", "FILES", "RunLocked", "RunLock", "run_paths", "run_files", "check_out_dir", "run_digest"]

#: what a run writes into its directory: key -> file name
FILES = dict(config="config.toml", checkpoint="checkpoint.npz", landscape="landscape.npz", metrics="metrics.jsonl",
             sgd="sgd.npz", summary="summary.json", figure="landscape.png")

LOCK_NAME = ".entropyeng.lock"


class RunLocked(RuntimeError):
    """The run directory is in use by another run (or was, on another host)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunLock:
    """``with RunLock(directory, say=print):`` the directory's exclusive lock (see the module
    docstring); :class:`RunLocked` if another run holds it."""

    def __init__(self, directory, say=None):
        self.path = os.path.join(os.fspath(directory), LOCK_NAME)
        self.say = say or (lambda msg: print(msg, file=sys.stderr))
        self.fd = None

    def __enter__(self):
        import fcntl

        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)  # a symlinked lock: SymlinkRefused
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunLocked(f"'{os.path.dirname(self.path)}' is in use by {self._owner_text()}; wait for it to "
                            "finish (or stop it) and try again") from None
        try:
            owner = self._read(fd)
            host = socket.gethostname()
            if owner and owner.get("host") not in (None, host):
                raise RunLocked(f"'{os.path.dirname(self.path)}' is locked by {self._describe(owner)}, another host: "
                                f"it may still be running there; if it is not, delete {self.path}")
            if owner and owner.get("pid") not in (None, os.getpid()):
                state = "no longer running" if not _alive(int(owner["pid"])) else "its lock released"
                self.say(f"entropyeng: taking over the stale lock of {self._describe(owner)} ({state})")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(dict(pid=os.getpid(), host=host, started=time.strftime("%Y-%m-%d %H:%M:%S"),
                                          argv=sys.argv[1:][:20])).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)  # releases the flock
            self.fd = None

    @staticmethod
    def _read(fd):
        """The owner record of a lock file ({pid, host, started}), or None: a file of other contents (a
        list, a string, nested JSON, a pid that is not a small integer) is no owner's record."""
        try:
            raw = os.pread(fd, 65536, 0)
            owner = json.loads(raw) if raw.strip() else None
        except (OSError, ValueError, RecursionError):
            return None
        return RunLock._sane(owner)

    @staticmethod
    def _sane(owner):
        if not isinstance(owner, dict):
            return None
        pid, host, started = owner.get("pid"), owner.get("host"), owner.get("started")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31):
            return None
        return {"pid": pid, "host": host if isinstance(host, str) else None,
                "started": started if isinstance(started, str) else None}

    @staticmethod
    def _describe(owner):
        return (f"pid {owner.get('pid') or '?'} on {owner.get('host') or '?'}"
                + (f" (since {owner['started']})" if owner.get("started") else ""))

    def _owner_text(self):
        try:
            fd = open_nofollow(self.path, os.O_RDONLY)
            try:
                owner = self._read(fd) or {}
            finally:
                os.close(fd)
        except (OSError, ValueError):
            owner = {}
        return "a running run, " + self._describe(owner) if owner else "a running run"


def run_paths(out) -> dict:
    """The paths of a run's files in the directory ``out`` (keys of :data:`FILES`)."""
    return {k: os.path.join(out, v) for k, v in FILES.items()}


def run_files(paths: dict) -> set:
    """The names of the files a run writes into its directory (and may replace)."""
    return {os.path.basename(p) for p in paths.values()} | {"last-good.npz", LOCK_NAME}


def check_out_dir(out: str, paths: dict, force: bool) -> list:
    """Refuse (ValueError) a run into a directory that holds anything but a fresh start: a run
    (resume it, or --force) or files that are not a run's (another --out, or --force, which replaces
    only the files a run writes and keeps the others). Returns the run's files that --force will
    replace (empty when the directory is new or empty)."""
    if not os.path.exists(out):
        return []
    if not os.path.isdir(out):
        raise ValueError(f"--out: '{out}' is a file, not a directory")
    present = sorted(n for n in os.listdir(out) if n != LOCK_NAME and not n.startswith(".tmp-"))
    if not present:
        return []
    ours = run_files(paths)
    mine = [n for n in present if n in ours]
    others = [n for n in present if n not in ours]
    if force:
        return mine
    shown = ", ".join(present[:6]) + (f" and {len(present) - 6} more" if len(present) > 6 else "")
    if os.path.exists(paths["checkpoint"]):
        raise ValueError(f"'{out}' already holds a run; use 'entropyeng resume {out}' to continue it, or --force to "
                         "start it again (replacing only the files a run writes)")
    if others:
        raise ValueError(f"'{out}' is not empty ({shown}) and holds no run to resume; choose another --out, or "
                         "--force to write the run there (replacing only the files a run writes, keeping the others)")
    raise ValueError(f"'{out}' holds files of an earlier run ({shown}) but no checkpoint to resume; choose another "
                     "--out, or --force to replace them")


# keys that set a run's budget or its speed, not its trajectory: a resume may change them
_NOT_IN_DIGEST = {"wlmc": {"stages", "checkpoint_every"},
                  "wlmd": {"steps", "checkpoint_every", "report_every", "threads", "compile", "sync_every"},
                  "data": {"path"}, "model": {"device"}}


def run_digest(config, problem) -> str:
    """A digest of what decides a run's trajectory: its configuration (less the budget, the SGD
    baseline and the data's file path) and its data arrays. A checkpoint carries it; resume refuses
    a checkpoint whose digest differs (another model, seed, grid or data)."""
    import hashlib

    cfg = {k: ({kk: vv for kk, vv in v.items() if kk not in _NOT_IN_DIGEST.get(k, ())} if isinstance(v, dict) else v)
           for k, v in config.items() if k != "sgd"}
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
    hash_arrays(h, [*problem.train, *problem.test])
    return h.hexdigest()[:32]
