"""``python -m bench``: the benchmark table, which ships inside the package (entropyeng.benchmarks) so that
``entropyeng bench`` works from an installed wheel; the studies that write the docs stay here."""

import sys

if "--avx2" in sys.argv:  # before the engine loads: its kernels read the cap once
    import os

    os.environ["ENTROPYENG_MAX_ISA"] = "v3"

from entropyeng.benchmarks.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main()
