"""The size limits every command, config and sweep spec applies, in one place (docs/reliability.md).

They are far beyond any run this machine class can finish, and they exist so that a typo (``1e30``
for ``1e3``) is one line naming the setting before anything is allocated, not an allocation of
gigabytes, a run that never ends, or a raw MemoryError. Each is the largest value accepted.
"""

#: walker-steps of a run, a harvest or a trainer (at a microsecond a step, 115 days on one core)
MAX_STEPS = 10**13
#: walkers of one process (WLMD's batched step; the trainer's independent walkers)
MAX_WALKERS = 65536
#: independent runs of one command (SGD baselines, md --runs, a sweep's spec)
MAX_RUNS = 100_000
#: a hidden layer's width, and a network's depth (layers)
MAX_WIDTH = 65536
MAX_DEPTH = 1000
#: rows of a data set (per class, or in all)
MAX_ROWS = 10**7
#: epochs of an SGD baseline
MAX_EPOCHS = 10**7
#: parameters x rows of one model evaluation (width^2 x depth x rows, roughly): 1e12 multiply-adds a
#: forward pass is about an hour of one core
MAX_MODEL_WORK = 10**12
#: bytes of a sweep spec or a config file read from disk
MAX_TEXT_BYTES = 1 << 20
#: worker processes of a local sweep (beyond the runs and the cores there is nothing for them to do)
MAX_LOCAL_WORKERS = 1024


def model_work(width: int, depth: int, rows: int) -> int:
    """A rough count of one forward pass's multiply-adds (width^2 per layer and row)."""
    return int(width) * int(width) * max(int(depth), 1) * max(int(rows), 1)
