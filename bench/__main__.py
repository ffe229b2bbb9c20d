"""``python -m bench``: the benchmark table, which ships inside the package (entropyeng.benchmarks) so that
``entropyeng bench`` works from an installed wheel; the studies that write the docs stay here."""

import sys

if "--avx2" in sys.argv:  # before torch and the engine load: each reads its cap once
    from entropyeng.benchmarks.avx2 import cap_to_avx2

    cap_to_avx2()

from entropyeng.benchmarks.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main()
