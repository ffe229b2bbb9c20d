"""Child processes that end with their parent (SGD pool workers, a sweep's runs)."""

from __future__ import annotations

import os

__all__ = ["die_with_parent", "die_with_parent_named", "PARENT_ENV"]

#: the environment variable through which a process that starts ``entropyeng`` (a sweep's worker)
#: names itself as the parent the command must not outlive
PARENT_ENV = "ENTROPYENG_DIE_WITH"


def die_with_parent(parent: int) -> None:
    """A child process's first act: die with the process that started it, however that one ends (a
    SIGKILL of ``entropyeng run`` in the SGD phase left its workers alive, holding the caller's
    pipes). On Linux the kernel sends the signal (``PR_SET_PDEATHSIG``); elsewhere a thread watches
    the parent's pid."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # 1: PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before the call
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def die_with_parent_named() -> None:
    """:func:`die_with_parent` of the pid that :data:`PARENT_ENV` names, if it names one (taken out
    of the environment, so that this process's own children do not inherit it)."""
    value = os.environ.pop(PARENT_ENV, "")
    if value.strip().isdigit():
        die_with_parent(int(value))
