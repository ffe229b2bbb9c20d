"""The CIFAR-10 batch reader against hostile pickles: hand-assembled opcode streams over every
allowed global with odd arguments, nesting, sizes, codecs, and random mutations of real batches.
Each must be read correctly or refused with BadBatch naming the file, within a second, with memory
bounded by a few times the file's size, and never crash the interpreter."""

import os
import pickle
import struct
import time
import tracemalloc

import numpy as np
import pytest

from entropyeng.tasks.cifar_batch import MAX_BATCH_BYTES, BadBatch, read_batch


class G:
    """A global in the stream (``c module\\nname\\n``)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``callable(*args)`` (REDUCE)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args


class Build:
    """``obj`` then BUILD with ``state`` (``__setstate__``)."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state


def enc(obj) -> bytes:
    """Opcodes that build ``obj`` (protocol 2 opcodes only, assembled by hand: the stand-ins never
    get a chance to be skipped by pickle's own writer)."""
    if obj is None:
        return b"N"
    if obj is True:
        return b"\x88"
    if obj is False:
        return b"\x89"
    if isinstance(obj, int):
        if -2**31 <= obj < 2**31:
            return b"J" + struct.pack("<i", obj)
        return b"L" + str(obj).encode() + b"L\n"
    if isinstance(obj, float):
        return b"G" + struct.pack(">d", obj)
    if isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(obj, bytes):
        return b"B" + struct.pack("<I", len(obj)) + obj
    if isinstance(obj, tuple):
        return b"(" + b"".join(map(enc, obj)) + b"t"
    if isinstance(obj, list):
        return b"](" + b"".join(map(enc, obj)) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(enc(k) + enc(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, G):
        return b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
    if isinstance(obj, Call):
        return enc(obj.fn) + enc(tuple(obj.args)) + b"R"
    if isinstance(obj, Build):
        return enc(obj.obj) + enc(obj.state) + b"b"
    raise TypeError(obj)


def stream(obj) -> bytes:
    return b"\x80\x02" + enc(obj) + b"."


NP = "numpy._core.multiarray"
U1_STATE = (3, "|", None, None, None, -1, -1, 0)


def dtype(name="u1", state=U1_STATE):
    return Build(Call(G("numpy", "dtype"), name, False, True), state)


def array(shape, raw, dt=None):
    return Build(Call(G(NP, "_reconstruct"), G("numpy", "ndarray"), (0,), b"b"),
                 (1, shape, dt or dtype(), False, raw))


def batch(data, labels):
    return {b"data": data, b"labels": labels}


def _read_bounded(path):
    """read_batch under a clock and tracemalloc: (result or the BadBatch, seconds, peak bytes)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = read_batch(path)
    except BadBatch as e:
        result = e
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def _assert_sane(path, result, seconds, peak):
    size = os.path.getsize(path)
    assert seconds < 1.0, f"{seconds:.2f} s"
    assert peak < 8 * size + 2**20, f"peak {peak} bytes for a file of {size}"
    if isinstance(result, BadBatch):
        assert str(path) in str(result) and "refused" in str(result)
    else:
        images, labels = result
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
        assert labels.dtype == np.int64 and labels.shape == (len(images),)
        assert labels.size == 0 or (labels.min() >= 0 and labels.max() <= 9)


GOOD_RAW = bytes(range(256)) * 24  # two images of 3072 bytes

HOSTILE = {
    # a dtype whose state gives it a field 10^7 bytes beyond its 1-byte item (the SIGSEGV of the audit)
    "dtype-field-offset": batch(array((2, 3072), GOOD_RAW, dtype("u1", (3, "|", None, ("a",), {"a": (dtype(), 10**7)},
                                                                          1, 1, 0))), [0, 1]),
    "dtype-elsize": batch(array((2, 3072), GOOD_RAW, dtype("u1", (3, "|", None, None, None, 10**7, 1, 0))), [0, 1]),
    "dtype-void-2GB": batch(array((1,), b"", dtype("V2147483647")), [0]),
    "dtype-not-a-string": batch(array((2, 3072), GOOD_RAW, dtype(("u1", 3))), [0, 1]),
    "dtype-object": batch(array((2, 3072), GOOD_RAW, dtype("O")), [0, 1]),
    "dtype-big-endian-labels": batch(array((2, 3072), GOOD_RAW), array((2,), b"\0" * 16,
                                                                       dtype("i8", (3, ">", None, None, None, -1, -1, 0)))),
    "dtype-bad-state": batch(array((2, 3072), GOOD_RAW, dtype("u1", "junk")), [0, 1]),
    # an array whose stated shape is 3 GB over 6 KB of bytes
    "reconstruct-3GB": batch(array((10**6, 3072), GOOD_RAW), [0]),
    "reconstruct-negative": batch(array((-2, 3072), GOOD_RAW), [0, 1]),
    "reconstruct-huge-dim": batch(array((2**62, 3072), GOOD_RAW), [0, 1]),
    "reconstruct-not-ndarray": batch(Call(G(NP, "_reconstruct"), G("numpy", "dtype"), (0,), b"b"), [0]),
    "reconstruct-raw-int": batch(array((2, 3072), 12345), [0, 1]),
    "reconstruct-fortran": batch(Build(Call(G(NP, "_reconstruct"), G("numpy", "ndarray"), (0,), b"b"),
                                       (1, (2, 3072), dtype(), True, GOOD_RAW)), [0, 1]),
    "reconstruct-state-short": batch(Build(Call(G(NP, "_reconstruct"), G("numpy", "ndarray"), (0,), b"b"), (1,)), [0]),
    "reconstruct-never-filled": batch(Call(G(NP, "_reconstruct"), G("numpy", "ndarray"), (0,), b"b"), [0]),
    "frombuffer-mismatch": batch(Call(G("numpy._core.numeric", "_frombuffer"), GOOD_RAW, dtype(), (10**6, 3072), "C"),
                                 [0, 1]),
    "frombuffer-order": batch(Call(G("numpy._core.numeric", "_frombuffer"), GOOD_RAW, dtype(), (2, 3072), "F"), [0, 1]),
    "frombuffer-not-a-dtype": batch(Call(G("numpy._core.numeric", "_frombuffer"), GOOD_RAW, "u1", (2, 3072), "C"),
                                    [0, 1]),
    "scalar-void": batch(array((2, 3072), GOOD_RAW), [Call(G(NP, "scalar"), dtype("V2147483647"), b"")]),
    "scalar-wrong-size": batch(array((2, 3072), GOOD_RAW), [Call(G(NP, "scalar"), dtype("i8"), b"\0" * 9), 0]),
    "codec-punycode": batch(Call(G("_codecs", "encode"), "\u00e9" * 20000, "punycode"), [0]),
    "codec-not-latin1": batch(Call(G("_codecs", "encode"), "\u20ac" * 10, "latin1"), [0]),
    "codec-errors": batch(Call(G("_codecs", "encode"), "x", "latin1", "replace"), [0]),
    "labels-300": batch(array((2, 3072), GOOD_RAW), [0, 300]),
    "labels-2^70": batch(array((2, 3072), GOOD_RAW), [0, 2**70]),
    "labels-negative": batch(array((2, 3072), GOOD_RAW), [-1, 0]),
    "labels-float": batch(array((2, 3072), GOOD_RAW), [0.5, 1]),
    "labels-count": batch(array((2, 3072), GOOD_RAW), [0, 1, 2]),
    "labels-array-out-of-range": batch(array((2, 3072), GOOD_RAW), array((2,), struct.pack("<qq", 0, 10), dtype("i8"))),
    "data-int64": batch(array((2, 384), GOOD_RAW, dtype("i8")), [0, 1]),
    "data-wrong-shape": batch(array((3, 2048), GOOD_RAW), [0, 1, 2]),
    "data-bytes-ragged": batch(GOOD_RAW[:-1], [0, 1]),
    "data-a-dict": batch({b"a": 1}, [0]),
    "not-a-dict": [1, 2, 3],
    "no-labels": {b"data": GOOD_RAW},
    "global-eval": batch(Call(G("builtins", "eval"), "1+1"), [0]),
    "global-os-system": batch(Call(G("os", "system"), "true"), [0]),
    "global-numpy-load": batch(Call(G("numpy", "load"), "/etc/passwd"), [0]),
    "global-copyreg": batch(Call(G("copyreg", "_reconstructor"), G("numpy", "ndarray"), None, None), [0]),
    "nested-lists": batch(array((2, 3072), GOOD_RAW), [[[[[[0]]]]], 1]),
    "unhashable-key": None,  # assembled below
}


def _unhashable_key():
    return b"\x80\x02}(" + enc([1]) + enc(2) + b"u."


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_batch_is_refused_in_bounds(tmp_path, name):
    path = tmp_path / "data_batch_1"
    path.write_bytes(_unhashable_key() if name == "unhashable-key" else stream(HOSTILE[name]))
    result, seconds, peak = _read_bounded(path)
    assert isinstance(result, BadBatch), f"{name}: accepted"
    _assert_sane(path, result, seconds, peak)


@pytest.mark.parametrize("shape, labels", [((2, 3072), [3, 9]), ((2, 3, 32, 32), [0, 1])])
def test_hand_assembled_batches_that_are_right_load(tmp_path, shape, labels):
    path = tmp_path / "b"
    path.write_bytes(stream(batch(array(shape, GOOD_RAW), labels)))
    images, got = read_batch(path)
    assert np.array_equal(images.reshape(-1), np.frombuffer(GOOD_RAW, np.uint8)) and got.tolist() == labels
    path.write_bytes(stream(batch(Call(G("_codecs", "encode"), GOOD_RAW.decode("latin-1"), "latin1"), labels)))
    images2, _ = read_batch(path)
    assert np.array_equal(images, images2)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_random_mutations_of_real_batches_never_escape(tmp_path, protocol):
    """300 mutations (flipped, inserted and deleted bytes, truncations) of a pickled batch of 4 images:
    each is read correctly or refused, inside the time and memory bounds."""
    rng = np.random.default_rng(protocol)
    data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    good = pickle.dumps({b"data": data, b"labels": [np.int64(3), 1, 2, 9], b"filenames": [b"a.png"] * 4},
                        protocol=protocol)
    path = tmp_path / "m"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        b = bytearray(good)
        for _ in range(int(rng.integers(1, 4))):
            kind, at = rng.integers(0, 4), int(rng.integers(0, len(b)))
            if kind == 0:
                b[at] = int(rng.integers(0, 256))
            elif kind == 1:
                b[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8))
            elif kind == 2:
                del b[at:at + int(rng.integers(1, 9))]
            else:
                del b[at:]
        path.write_bytes(bytes(b))
        result, seconds, peak = _read_bounded(path)
        _assert_sane(path, result, seconds, peak)
        outcomes["refused" if isinstance(result, BadBatch) else "read"] += 1
    assert outcomes["refused"] > 100  # the mutations do reach the checks


def test_only_regular_files_of_a_batchs_size_are_read(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BATCH_BYTES + 1)  # sparse: no disk used
    with pytest.raises(BadBatch, match="more than a batch"):
        read_batch(big)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer end, so that opening the reader does not block
    try:
        with pytest.raises(BadBatch, match="not a regular file"):
            read_batch(fifo)
    finally:
        os.close(fd)
