"""Kill the process that builds a piece, as the out-of-memory killer would.

A piece is found by the LilyPond process that renders it: LilyPond runs as a
descendant of the worker process (a local pool worker or a Dask worker; inside
the sandbox, below bubblewrap) with the piece's main file as its last
argument (a bare name: LilyPond runs in the main file's folder).  Such pieces
are made slow on purpose (a Scheme ``sleep`` in the source), so the kill always
lands while the worker holds the piece.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import psutil


def lilyponds_of(main_name: str) -> list[psutil.Process]:
    """Return the LilyPond processes below this process that render ``main_name``."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if (
            command
            and "lilypond" in os.path.basename(command[0])
            and (command[-1] == main_name or command[-1].endswith(f"/{main_name}"))
        ):
            found.append(process)
    return found


def worker_of(lilypond: psutil.Process) -> psutil.Process | None:
    """The Python process that started ``lilypond``: its nearest ancestor that is not
    the sandbox (``bwrap`` and the shell it runs) around it."""
    process = lilypond.parent()
    while process is not None and process.name() in {"bwrap", "sh"}:
        process = process.parent()
    return process


class WorkerKiller(threading.Thread):
    """Kill the worker rendering ``main_name`` each time LilyPond starts on it, ``times`` times.

    The worker is killed first (SIGKILL, so it records nothing), then the process
    group LilyPond runs in (the sandbox's, or LilyPond's own), which would
    otherwise run on without a parent.

    Parameters
    ----------
    main_name : str
        File name of the piece's main file (``doomed.ly``).
    times : int
        How many workers to kill at most.
    ready : callable, optional
        Given the number of kills so far, whether to kill now (default: always).
    timeout_sec : float
        Give up after this long.
    """

    def __init__(
        self,
        main_name: str,
        *,
        times: int,
        ready: Callable[[int], bool] = lambda kills: True,
        timeout_sec: float = 180.0,
    ) -> None:
        super().__init__(daemon=True)
        self.main_name = main_name
        self.times = times
        self.ready = ready
        self.timeout_sec = timeout_sec
        self.killed_workers: list[int] = []
        self._done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_sec
        seen: set[int] = set()
        while (
            not self._done.is_set()
            and len(self.killed_workers) < self.times
            and time.monotonic() < deadline
        ):
            for lilypond in lilyponds_of(self.main_name):
                if lilypond.pid in seen or not self.ready(len(self.killed_workers)):
                    continue
                try:
                    worker = worker_of(lilypond)
                    if worker is None:
                        continue
                    group = os.getpgid(lilypond.pid)
                    worker.kill()
                    os.killpg(group, signal.SIGKILL)
                except (psutil.NoSuchProcess, ProcessLookupError):
                    continue
                seen.add(lilypond.pid)
                self.killed_workers.append(worker.pid)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._done.set()
        self.join()
