"""The process of one run of a sweep (started by :func:`entropyeng.sweep.job.run_job`): it dies with
the worker that started it, then is ``entropyeng resume DIR ...``."""

import sys


def main(argv):
    from .._procs import die_with_parent
    from ..cli import main as cli_main

    die_with_parent(int(argv[0]))
    return cli_main(["resume", *argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
