"""Ctrl-C on the command line: one line on stderr and exit status 130, from the first
instant (imports included) to the last (a second Ctrl-C during the cleanup).

The first Ctrl-C raises KeyboardInterrupt, so that a sweep stops and closes its cluster;
a second one ends the process at once. Python can only print a KeyboardInterrupt raised
in a finalizer, and goes on: such a first Ctrl-C ends the process at once too. An import
may swallow it (torch does, while it imports numpy): :func:`raise_lost` raises it again
once the imports are done. Before golden's first line runs, Ctrl-C is Python's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

LINE = "golden: interrupted; finished runs are stored and a rerun resumes from them"
STATUS = 130
_told = False
_pressed = False


def tell() -> int:
    """Print the line (a second Ctrl-C waits meanwhile, so that it is printed whole, and
    once); Ctrl-C's exit status."""
    global _told
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        print(LINE, file=sys.stderr, flush=True)
        _told = True
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return STATUS


def handle_ctrl_c() -> None:
    """Take over Ctrl-C for this process, unless it is ignored (a shell starts a
    background job so, and that stays)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _first)
        sys.unraisablehook = _unraisable


def raise_lost() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C that something swallowed."""
    if _pressed:
        raise KeyboardInterrupt


def end(status: int):
    """Exit with ``status``; after Ctrl-C at once, since what had to close is closed
    (and Python might report a KeyboardInterrupt it saw on the way as a signal)."""
    if status != STATUS:
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe, say
            stream.flush()
    os._exit(STATUS)


def _first(signum, frame):
    global _pressed
    _pressed = True
    signal.signal(signal.SIGINT, _end_now)
    raise KeyboardInterrupt


def _end_now(*args) -> None:
    if not _told:
        os.write(2, f"{LINE}\n".encode())
    os._exit(STATUS)


def _unraisable(unraisable) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _end_now()
    sys.__unraisablehook__(unraisable)
