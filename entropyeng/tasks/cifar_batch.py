"""Reading one CIFAR-10 python batch (a pickle) without trusting it.

A pickle is a program. The batch is read with an unpickler whose globals are inert stand-ins: the
names a real batch uses (numpy's ``_reconstruct``, ``ndarray``, ``dtype``, ``_frombuffer``, ``scalar`` and the
``_codecs.encode`` with which Python 3 pickles bytes at protocol 2) resolve to small classes of this
module that only record their arguments. Nothing numpy builds comes from the file: after the
unpickler has finished, :func:`read_batch` checks what was recorded (a uint8 image block whose bytes
are exactly its stated shape, labels that are ints 0..9) and only then makes the arrays itself, with
``np.frombuffer`` over bytes that are already in memory. So a crafted dtype (fields beyond its item,
a 2 GB void), a stated shape of 3 GB, a codec other than latin-1 or a value out of range are refused
with the file's name before any allocation larger than the file itself.

The file is read whole, once, up to :data:`MAX_BATCH_BYTES`, and only if it is a regular file.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import stat

import numpy as np

__all__ = ["read_batch", "MAX_BATCH_BYTES", "BadBatch"]

#: A CIFAR-10 python batch is 10,000 images of 3,072 bytes (~31 MB with its filenames); twice that is
#: more than any real batch and caps what an unpickler can be made to hold.
MAX_BATCH_BYTES = 64 * 2**20
#: Pixels of one image, and the number of classes.
IMAGE_BYTES, CLASSES = 3 * 32 * 32, 10


class BadBatch(ValueError):
    """The file is not a CIFAR-10 python batch (the reason in the message)."""


#: dtype names a batch may state: uint8 for the images, little-endian ints for labels stored as an array
_DTYPES = {"u1": np.uint8, "|u1": np.uint8, "uint8": np.uint8, "b": np.uint8, "B": np.uint8,
           "i8": np.int64, "<i8": np.int64, "int64": np.int64, "i4": np.int32, "<i4": np.int32, "int32": np.int32}


def _text(value):
    if isinstance(value, bytes) and len(value) <= 16:
        return value.decode("latin-1")
    if isinstance(value, str) and len(value) <= 16:
        return value
    raise BadBatch("a dtype named by something other than a short string")


class _Dtype:
    """``numpy.dtype(name, align, copy)`` as recorded: only the names in ``_DTYPES``; its state (set
    by the pickle's BUILD) may say the byte order and nothing else (no fields, no sizes)."""

    def __init__(self, name=None, align=False, copy=False, *rest):
        if rest:
            raise BadBatch("numpy.dtype called with too many arguments")
        name = _text(name)
        if name not in _DTYPES:
            raise BadBatch(f"a dtype {name!r}, which a CIFAR-10 batch does not hold")
        self.numpy = np.dtype(_DTYPES[name])

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise BadBatch("a dtype with an unknown state")
        order, fields_a, fields_b, size, align = state[1], state[2], state[3], state[5], state[6]
        if _text(order) not in ("|", "<", "=") or fields_a is not None or fields_b is not None \
                or size not in (-1, self.numpy.itemsize) or align not in (-1, self.numpy.alignment, 1):
            raise BadBatch("a dtype with fields, sizes or a byte order a CIFAR-10 batch does not hold")


class _NdarrayName:
    """``numpy.ndarray`` as a name: only an argument of ``_reconstruct``."""


def _shape(shape):
    if not isinstance(shape, tuple) or len(shape) > 4 or not all(type(n) is int and 0 <= n < 2**31 for n in shape):
        raise BadBatch("an array whose shape is not a short tuple of small non-negative ints")
    return shape


class _Array:
    """An array as recorded: its dtype, shape and raw bytes, checked to agree; no numpy array yet."""

    def __init__(self, dtype=None, shape=None, raw=None):
        self.dtype, self.shape, self.raw = dtype, shape, raw
        if raw is not None:
            self._check()

    def _check(self):
        if not isinstance(self.dtype, _Dtype):
            raise BadBatch("an array whose dtype is not a plain numpy dtype")
        _shape(self.shape)
        if isinstance(self.raw, (bytearray, memoryview, pickle.PickleBuffer)):
            self.raw = bytes(self.raw)
        if not isinstance(self.raw, bytes):
            raise BadBatch("an array whose data are not bytes")
        if math.prod(self.shape) * self.dtype.numpy.itemsize != len(self.raw):
            raise BadBatch(f"an array of shape {self.shape} ({self.dtype.numpy}) over {len(self.raw)} bytes")

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise BadBatch("an array with an unknown state")
        if len(state) == 5:
            state = state[1:]
        self.shape, self.dtype, fortran, self.raw = state
        if fortran not in (False, 0):
            raise BadBatch("a Fortran-ordered array")
        if isinstance(self.raw, str):  # a Python 2 batch read with encoding='latin1'
            self.raw = self.raw.encode("latin-1")
        self._check()

    def numpy(self):
        return np.frombuffer(self.raw, dtype=self.dtype.numpy).reshape(self.shape)


def _reconstruct(cls, shape, code):
    if cls is not _NdarrayName or shape not in ((0,), [0]):
        raise BadBatch("numpy's _reconstruct with arguments a CIFAR-10 batch does not hold")
    return _Array()


def _frombuffer(buf, dtype, shape, order):
    if order not in ("C", b"C"):
        raise BadBatch("an array in an order other than C")
    return _Array(dtype, _shape(shape), buf)


def _scalar(dtype, raw=None):
    """``numpy.core.multiarray.scalar``: a label pickled as a numpy int, as a Python int (its bytes
    exactly one item of an int dtype)."""
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if not isinstance(dtype, _Dtype) or dtype.numpy.kind not in "iu" or not isinstance(raw, bytes) \
            or len(raw) != dtype.numpy.itemsize:
        raise BadBatch("a numpy scalar that is not one int")
    return int(np.frombuffer(raw, dtype=dtype.numpy)[0])


def _encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` for latin-1 only, the codec Python uses to pickle bytes at protocol 2
    (any other codec, punycode among them, costs what the file says)."""
    if not isinstance(text, str) or _text(encoding).lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591") \
            or errors != "strict":
        raise BadBatch("a codec call other than encode(str, 'latin1')")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise BadBatch("bytes that are not latin-1") from None


_STANDINS = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _STANDINS[(_module, "_reconstruct")] = _reconstruct
    _STANDINS[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _STANDINS[(_module, "_frombuffer")] = _frombuffer
_STANDINS[("numpy", "ndarray")] = _NdarrayName
_STANDINS[("numpy", "dtype")] = _Dtype
_STANDINS[("_codecs", "encode")] = _encode


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _STANDINS[(module, name)]
        except (KeyError, TypeError):
            raise BadBatch(f"it asks to load {str(module)[:60]}.{str(name)[:60]}, which a CIFAR-10 batch does not "
                           f"hold") from None

    def persistent_load(self, pid):
        raise BadBatch("a persistent id, which a CIFAR-10 batch does not hold")


def _read(path):
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BadBatch("not a regular file")
        if st.st_size > MAX_BATCH_BYTES:
            raise BadBatch(f"{st.st_size} bytes, more than a batch's {MAX_BATCH_BYTES}")
        raw = fh.read(st.st_size + 1)  # (read(n) allocates n first: the file's own size, not the cap)
    if len(raw) > MAX_BATCH_BYTES:
        raise BadBatch(f"more than a batch's {MAX_BATCH_BYTES} bytes")
    return raw


def _images(data):
    if isinstance(data, _Array):
        if data.raw is None:
            raise BadBatch("an array that was never filled")
        if data.dtype.numpy != np.uint8:
            raise BadBatch(f"images of dtype {data.dtype.numpy}, not uint8")
        if math.prod(data.shape[1:]) != IMAGE_BYTES or len(data.shape) not in (2, 4):
            raise BadBatch(f"images of shape {data.shape}, not (n, 3072)")
        return data.numpy().reshape(-1, 3, 32, 32)
    if isinstance(data, bytes) and len(data) % IMAGE_BYTES == 0:
        return np.frombuffer(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    raise BadBatch("its data are not a uint8 array of n x 3072 pixels")


def _labels(labels, n):
    if isinstance(labels, _Array):
        if labels.raw is None or labels.dtype.numpy.kind not in "iu" or len(labels.shape) != 1:
            raise BadBatch("its labels are not a list of ints")
        values = labels.numpy().astype(np.int64)
    elif isinstance(labels, list) and all(type(v) is int for v in labels):
        if not all(0 <= v < CLASSES for v in labels):
            raise BadBatch(f"a label outside 0..{CLASSES - 1}")
        values = np.asarray(labels, dtype=np.int64)
    else:
        raise BadBatch("its labels are not a list of ints")
    if len(values) != n:
        raise BadBatch(f"{len(values)} labels for {n} images")
    if values.size and (values.min() < 0 or values.max() >= CLASSES):
        raise BadBatch(f"a label outside 0..{CLASSES - 1}")
    return values


def read_batch(path):
    """(images (n, 3, 32, 32) uint8, labels (n,) int64) of one batch file; :class:`BadBatch` naming
    the file when it is not a CIFAR-10 python batch. Runs no code from the file and allocates
    nothing beyond a few times the file's size."""
    try:
        raw = _read(path)
        try:
            d = _Unpickler(io.BytesIO(raw), encoding="bytes").load()
        except BadBatch:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                MemoryError, OverflowError, RecursionError, UnicodeError) as e:
            raise BadBatch(f"{type(e).__name__}: {str(e)[:120]}") from None
        if not isinstance(d, dict):
            raise BadBatch(f"a {type(d).__name__}, not a dict")
        data = d.get(b"data", d.get("data"))
        labels = d.get(b"labels", d.get("labels"))
        if data is None or labels is None:
            raise BadBatch("no data / labels")
        images = _images(data)
        return images, _labels(labels, len(images))
    except BadBatch as e:
        raise BadBatch(f"data: '{path}' is not a CIFAR-10 python batch ({e}); refused") from None
