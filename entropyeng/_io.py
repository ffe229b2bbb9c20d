"""Atomic, self-describing files: written to a temporary file, fsynced, then renamed."""

from __future__ import annotations

import errno
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


def crop(a: np.ndarray):
    """(box, origin) of a 2-D array: the smallest block holding every non-zero entry (an empty (0, 0)
    block for an all-zero array) and the index of its first cell. A landscape on the paper's 2000 x 2000
    grid is zero outside the cells its walkers reached: 64 MB stored whole, kilobytes cropped."""
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        return a[:0, :0].copy(), (0, 0)
    i0, i1, j0, j1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return np.ascontiguousarray(a[i0:i1, j0:j1]), (i0, j0)


def save_npz_atomic(path, arrays: dict, meta: dict, cropped=()) -> None:
    """Write ``arrays`` and a JSON ``meta`` dict (with the format version) to ``path`` atomically. The
    2-D arrays named in ``cropped`` are stored as their non-zero block (:func:`crop`), its place and the
    full shape in ``meta["cropped"]``; :func:`load_npz` restores them whole."""
    payload, boxes = dict(arrays), {}
    for name in cropped:
        a = np.asarray(payload[name])
        payload[name], origin = crop(a)
        boxes[name] = dict(shape=list(a.shape), origin=list(origin),
                           digest=_crop_digest(payload[name], list(a.shape), list(origin)))
    if boxes:
        meta = dict(meta, cropped=boxes)
    payload["__meta__"] = np.frombuffer(json.dumps(dict(meta, format_version=FORMAT_VERSION)).encode(), dtype=np.uint8)
    savez_atomic(path, **payload)


class SymlinkRefused(ValueError):
    """A file the package was asked to write is a symbolic link: it writes through none."""


def refuse_symlink(path) -> None:
    """:class:`SymlinkRefused` naming ``path`` if it is a symbolic link (a broken one included). The
    package writes no file through a link: a run directory's ``landscape.png`` or lock that points
    elsewhere would have a run (often as root, in a container) truncate or replace that file."""
    if os.path.islink(path):
        raise SymlinkRefused(f"'{os.fspath(path)}' is a symbolic link (to '{os.readlink(path)}'); entropyeng writes "
                             "through no link: remove it, or write elsewhere")


def open_nofollow(path, flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_CLOEXEC)``; :class:`SymlinkRefused` if ``path`` is a link."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuse_symlink(path)
        raise


def open_append(path):
    """A text file opened for appending (created 0666 less the umask), never through a symlink."""
    return os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a")


def save_figure(fig, path, **kwargs) -> str:
    """``fig.savefig`` into ``path`` atomically and through no symlink (the format from the name)."""
    buf = io.BytesIO()
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    fig.savefig(buf, format=fmt, **kwargs)
    write_atomic(path, buf.getvalue())
    return path


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename): a crash or
    a full disk leaves the old file or none, never a truncated one. The temporary file is created
    ``O_EXCL`` (mkstemp: never an existing name, never through a link) and ``path`` itself is refused
    if it is a symbolic link (:func:`refuse_symlink`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    refuse_symlink(path)
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


def tail_lines(path, nbytes=8192) -> list:
    """The lines of the last ``nbytes`` of a text file (the first may be cut); [] if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - nbytes))
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def savez_atomic(path, **arrays) -> None:
    """np.savez to ``path`` atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def hash_arrays(h, arrays) -> None:
    """Feed each array (numpy, or a torch tensor on any device) to the hash ``h``: its dtype and
    shape, then its bytes in C order (the digests that tie a checkpoint to its run and its data)."""
    for a in arrays:
        arr = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())


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


#: the most memory a file's arrays may take once read (besides what the machine has available)
MAX_NPZ_BYTES = 16 * 2**30


def load_npz(path, kind: str):
    """(arrays, meta) of a file written by save_npz_atomic; refuses other kinds and newer formats, a
    path that is not a regular file, a file that is not an npz, and arrays (stored, or restored from a
    crop record) larger than the machine's available memory or MAX_NPZ_BYTES, before reading them
    (a small file that inflates to gigabytes is refused from its headers)."""
    import stat
    import zipfile

    from ._checks import fits_in_memory

    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file")
    try:
        opened = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:  # (a file that is no npz: "pickled data")
        raise ValueError(f"{path}: not a readable entropyeng file ({type(e).__name__}: {str(e)[:80]})") from None
    if not hasattr(opened, "files"):  # a bare .npy array
        raise ValueError(f"{path}: not an entropyeng file (an array, not an npz archive)")
    try:
        with opened as f:
            if not hasattr(f, "files") or "__meta__" not in f.files:
                raise ValueError(f"{path}: not an entropyeng file (no metadata)")
            inflated = sum(info.file_size for info in f.zip.infolist())
            if inflated > MAX_NPZ_BYTES:
                raise ValueError(f"{path}: its arrays take {inflated / 2**30:.3g} GiB once read, more than "
                                 f"{MAX_NPZ_BYTES / 2**30:.0f} GiB; refused")
            fits_in_memory(inflated, f"{path}: its arrays")
            meta = json.loads(bytes(f["__meta__"]).decode())
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable entropyeng file ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not an entropyeng file (its metadata is not a table)")
    if meta.get("kind") != kind:
        raise ValueError(f"{path}: expected a {kind} file, got {meta.get('kind')!r}")
    try:
        version = int(meta.get("format_version", 0))
    except (TypeError, ValueError):
        raise ValueError(f"{path}: malformed format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']} is newer than this entropyeng "
                         f"understands ({FORMAT_VERSION}); upgrade entropyeng")
    boxes = meta.pop("cropped", None) or {}
    if not isinstance(boxes, dict):
        raise ValueError(f"{path}: malformed crop records {str(boxes)[:80]}")
    for name, box in boxes.items():  # (the record describes the file, not the state)
        arrays[name] = _uncrop(path, name, arrays.get(name), box, meta.get("grid"))
    return arrays, meta


def _crop_digest(block, shape, origin) -> str:
    """sha256 of a cropped block with its place (shape and origin): an edited origin that still fits
    would otherwise move the block silently."""
    import hashlib

    h = hashlib.sha256(json.dumps([list(map(int, shape)), list(map(int, origin))]).encode())
    hash_arrays(h, [block])
    return h.hexdigest()


def _grid_shape(grid):
    """(nx, ny) of a file's grid record ({"nx":..., "ny":...} or [x_min, x_max, nx, y_min, y_max, ny]), or None."""
    try:
        if isinstance(grid, dict):
            return int(grid["nx"]), int(grid["ny"])
        if isinstance(grid, (list, tuple)) and len(grid) == 6:
            return int(grid[2]), int(grid[5])
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    return None


def _uncrop(path, name, block, box, grid=None):
    """The whole array of a block stored by :func:`save_npz_atomic` (checked before allocating: a 2-D
    block that fits its record, a record of the file's grid where the file has one, and memory for it)."""
    from ._checks import fits_in_memory

    try:
        shape, origin = tuple(int(n) for n in box["shape"]), tuple(int(n) for n in box["origin"])
    except (TypeError, KeyError, ValueError, OverflowError):
        raise ValueError(f"{path}: field '{name}' has a malformed crop record {str(box)[:80]}") from None
    if block is None or block.ndim != 2 or len(shape) != 2 or len(origin) != 2 or min(shape + origin) < 0 \
            or origin[0] + block.shape[0] > shape[0] or origin[1] + block.shape[1] > shape[1] \
            or shape[0] * shape[1] > 2**31:
        raise ValueError(f"{path}: field '{name}' does not fit its crop record {str(box)[:80]}")
    expected = _grid_shape(grid)
    if expected is not None and shape != expected:
        raise ValueError(f"{path}: field '{name}''s crop record says {shape[0]} x {shape[1]} cells, its grid "
                         f"{expected[0]} x {expected[1]}")
    if "digest" in box and box["digest"] != _crop_digest(block, shape, origin):
        raise ValueError(f"{path}: field '{name}' does not match its crop record's digest (the block or its "
                         "place was edited)")
    fits_in_memory(shape[0] * shape[1] * block.dtype.itemsize, f"{path}: field '{name}'")
    whole = np.zeros(shape, dtype=block.dtype)
    whole[origin[0]:origin[0] + block.shape[0], origin[1]:origin[1] + block.shape[1]] = block
    return whole
