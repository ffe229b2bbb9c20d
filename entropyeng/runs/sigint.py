"""Ctrl-C in the ``entropyeng`` command: where its KeyboardInterrupt may be raised, and where it waits.

Python raises KeyboardInterrupt at the main thread's next bytecode, wherever that is. Inside an
import it does harm: in an extension's C++ (pybind11 then aborts the interpreter), in an import
lock's weakref callback (the exception is ignored and the run goes on), or where the interpreter
records it as unhandled and ends the process by SIGINT after a clean exit. So while the command
loads torch and the engine, and in a run's loop, Ctrl-C only sets a flag that is read later
(:class:`SigintHandler`); elsewhere :func:`between_imports` raises it as Python would, but never
inside an import: there it comes again 50 ms later."""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["SigintHandler", "between_imports"]

#: how long an interrupt that came inside an import waits before it comes again
RETRY_SECONDS = 0.05


class SigintHandler:
    """Within it Ctrl-C goes to ``handler``, by default one that appends to the list ``stop`` (a
    loop reads it between chunks); the previous handler is back on exit. Off the main thread it
    leaves Ctrl-C alone."""

    def __init__(self, handler=None):
        self.handler = handler

    def __enter__(self):
        self.stop = []
        try:
            self.previous = signal.signal(signal.SIGINT, self.handler or (lambda *_: self.stop.append(True)))
        except ValueError:  # not the main thread
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None and not _swallowing:
            signal.signal(signal.SIGINT, self.previous)


#: set once an interrupt has been taken: further Ctrl-Cs are swallowed until main() returns
_swallowing = False


def swallow_further() -> None:
    """An interrupt has been taken (the command is writing its checkpoint and saying so): a second
    Ctrl-C, pressed while it does, is ignored rather than ending the process by the signal (rc -2,
    seen on CI 50 ms after a first one). The handlers that leave their blocks keep this one;
    :func:`entropyeng.cli.main` puts back the handler it found when it returns."""
    global _swallowing
    try:
        # SIG_IGN, not a Python function: the interpreter's finalization puts SIGINT back to the OS
        # default where a Python handler was installed, and a Ctrl-C then (atexit, freeing torch) ends the
        # process by the signal; an ignored signal stays ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return
    _swallowing = True


def stop_swallowing(handler) -> None:
    """main()'s return: the handler it found is back (a process that goes on, a test runner)."""
    global _swallowing
    if _swallowing:
        _swallowing = False
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:
            pass


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def between_imports(signum, frame):
    """A SIGINT handler: KeyboardInterrupt, as Python's own, unless an import is under way; then
    the same signal again in :data:`RETRY_SECONDS`, until it comes between imports."""
    if _importing(frame):
        retry = threading.Timer(RETRY_SECONDS, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
    raise KeyboardInterrupt
