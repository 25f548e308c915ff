"""RDKit's own Ctrl-C, handed back to Python while a run is under way.

RDKit installs a SIGINT handler of its own for as long as a substructure search runs (the
``fr_*`` descriptor counts, ETKDG's torsion patterns in an adsorbate's embedding). A Ctrl-C
that lands there never reaches Python: RDKit cuts the search short, returns the matches found so
far and only logs "Substructure search was interrupted, result may not include all matches"
(checked with RDKit 2026.09). The run would carry on, with a wrong descriptor or a different
geometry, and the user's Ctrl-C would be lost (a CI run caught this: `alloop run` went on for
two minutes after one SIGINT).

:func:`rdkit_interrupts_reach_python` routes RDKit's log through Python logging for its span;
the interruption notice re-raises SIGINT in the main thread (``_thread.interrupt_main``, once
the main thread is out of the log call), which then stops the run the way any Ctrl-C does, at
the first Python line after RDKit returns, before the partial result is used. RDKit's messages
also go to this module's logger at debug level; RDKit keeps writing them to stderr as well, as it
does outside (its C++ stream stays on beside the Python logger).

A notice hidden by ``rdkit.rdBase.BlockLogs`` cannot be seen here, so the code that can search
(``alloop.surrogate.descriptors``, the embeddings) does not block RDKit's log.
"""

from __future__ import annotations

import _thread
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["rdkit_interrupts_reach_python"]

logger = logging.getLogger(__name__)

#: the logger ``rdBase.LogToPythonLogger`` writes to
RDKIT_LOGGER = "rdkit"
#: what RDKit's notice says when its handler took a SIGINT (substructure, CIP and MCS searches)
_INTERRUPTED = re.compile(r"\binterrupted\b", re.IGNORECASE)
#: how long the relay waits for the main thread to leave the log call before it raises anyway, s
_LEAVE_LOG_CALL_S = 5.0


def _inside_the_log_call(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in (logging.__file__, __file__):
            return True
        frame = frame.f_back
    return False


def _interrupt_main_after_the_log_call() -> None:
    # Raised inside the log call, the KeyboardInterrupt would unwind into RDKit's C++ and come
    # out as a SystemError (an Exception that a label guard would record as a failure); raised
    # once the main thread has left it, it surfaces at the first Python line after RDKit returns
    main = threading.main_thread().ident
    deadline = time.monotonic() + _LEAVE_LOG_CALL_S
    while time.monotonic() < deadline:
        if main is None or not _inside_the_log_call(sys._current_frames().get(main)):
            break
        time.sleep(0.001)
    _thread.interrupt_main(signal.SIGINT)


class _Relay(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _INTERRUPTED.search(message):
            threading.Thread(
                target=_interrupt_main_after_the_log_call, name="rdkit-sigint", daemon=True
            ).start()
        logger.debug("RDKit: %s", message.strip())


@contextmanager
def rdkit_interrupts_reach_python() -> Iterator[None]:
    """For its span, a SIGINT that RDKit's handler took is raised in the main thread as well.

    Restores RDKit's log to its C++ streams and the ``rdkit`` logger's settings on the way out.
    """
    from rdkit import rdBase

    rd = logging.getLogger(RDKIT_LOGGER)
    relay = _Relay()
    saved = (rd.propagate, rd.level)
    rd.addHandler(relay)
    rd.propagate = False  # RDKit's own stream already shows them
    rd.setLevel(logging.WARNING)  # RDKit's info and debug channels are off anyway
    rdBase.LogToPythonLogger()
    try:
        yield
    finally:
        rdBase.LogToCppStreams()
        rd.removeHandler(relay)
        rd.propagate = saved[0]
        rd.setLevel(saved[1])
