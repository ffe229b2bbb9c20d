"""Atomic, self-describing files: written to a temporary file, fsynced, then renamed."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile

import numpy as np

FORMAT_VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: files are created as open() creates them: 0666 less the process's umask (mkstemp's are 0600)
_FILE_MODE = 0o666 & ~_umask()


def save_npz_atomic(path, arrays: dict, meta: dict) -> None:
    """Write ``arrays`` and a JSON ``meta`` dict (with the format version) to ``path`` atomically."""
    payload = dict(arrays)
    payload["__meta__"] = np.frombuffer(json.dumps(dict(meta, format_version=FORMAT_VERSION)).encode(), dtype=np.uint8)
    savez_atomic(path, **payload)


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename): a crash or
    a full disk leaves the old file or none, never a truncated one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_bytes(obj) -> bytes:
    """Strict JSON (NaN and infinities become null, which jq and browsers read)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    return (json.dumps(clean(obj), indent=2, allow_nan=False) + "\n").encode()


def savez_atomic(path, **arrays) -> None:
    """np.savez to ``path`` atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def remove_stale_temporaries(folder) -> int:
    """Delete the ``.tmp-*`` files an interrupted atomic write left in ``folder`` (a run directory
    has one writer); returns how many."""
    n = 0
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith(".tmp-"):
                try:
                    os.unlink(os.path.join(folder, name))
                    n += 1
                except OSError:
                    pass
    return n


def load_npz(path, kind: str):
    """(arrays, meta) of a file written by save_npz_atomic; refuses other kinds and newer formats."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        if "__meta__" not in f.files:
            raise ValueError(f"{path}: not an entropyeng file (no metadata)")
        meta = json.loads(bytes(f["__meta__"]).decode())
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
    if meta.get("kind") != kind:
        raise ValueError(f"{path}: expected a {kind} file, got {meta.get('kind')!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']} is newer than this entropyeng "
                         f"understands ({FORMAT_VERSION}); upgrade entropyeng")
    return arrays, meta
