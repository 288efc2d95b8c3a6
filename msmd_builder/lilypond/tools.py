"""Locate and run the external programs: LilyPond and convert-ly.

Both come from the pinned PyPI ``lilypond`` wheel (never a system LilyPond), so
every machine renders with the same binaries.  :func:`run_tool` runs a program
in its own process group with a hard time limit: on a hang the whole group is
killed and the caller gets a :class:`ToolRun` with ``timed_out=True``.  With
``limits`` and ``view`` it also runs under resource limits and inside the
bubblewrap sandbox (:mod:`msmd_builder.lilypond.sandbox`).
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.core.resources import shipped_path
from msmd_builder.lilypond.sandbox import (
    SandboxSettings,
    SandboxView,
    resource_limiter,
    sandbox_command,
    signal_of_sandbox_status,
    split_cpu_report,
)

__all__ = [
    "LILYPOND_PIN",
    "ToolRun",
    "lilypond_executable",
    "lilypond_install_dir",
    "convert_ly_executable",
    "lilypond_version",
    "patches_dir",
    "run_tool",
]

#: The LilyPond release every build uses (see docs/lilypond-version.md).
LILYPOND_PIN = "2.25.12"

_INSTALL_HINT = f"install it with `pip install lilypond=={LILYPOND_PIN}` (or run `make setup`)"


@dataclass(frozen=True)
class ToolRun:
    """Outcome of one external program run.

    Attributes
    ----------
    returncode : int
        Exit status; negative when killed by a signal (``-11`` for a segfault).
    stdout, stderr : str
        Captured output, decoded as UTF-8 with replacement.
    seconds : float
        Wall-clock duration.
    timed_out : bool
        True when the time limit was hit and the process group was killed.
    sandboxed : bool
        True when the program ran inside bubblewrap.
    cpu_seconds : float
        CPU time (user and system) of the program and everything it started.
    """

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    sandboxed: bool = False
    cpu_seconds: float = 0.0


def _binary(script: str) -> Path:
    try:
        import lilypond
    except ImportError as exc:
        raise ToolNotFoundError(f"the PyPI package 'lilypond' is missing; {_INSTALL_HINT}") from exc
    path = Path(lilypond.executable(script))
    if not path.exists():
        raise ToolNotFoundError(f"{script} not found at {path}; {_INSTALL_HINT}")
    return path


def lilypond_executable() -> Path:
    """Return the path of the pinned ``lilypond`` binary."""
    return _binary("lilypond")


def convert_ly_executable() -> Path:
    """Return the path of the ``convert-ly`` script shipped with the same wheel."""
    return _binary("convert-ly")


def lilypond_install_dir() -> Path:
    """Return the folder of the LilyPond installation (binaries, Guile, fonts, ``ly/`` files).

    A sandboxed run sees it read-only.
    """
    return lilypond_executable().resolve().parent.parent


@functools.cache
def lilypond_version() -> str:
    """Return the version string reported by ``lilypond --version`` (e.g. ``"2.25.12"``)."""
    run = run_tool([str(lilypond_executable()), "--version"], timeout_sec=60)
    first = run.stdout.splitlines()[0] if run.stdout else ""
    # "GNU LilyPond 2.25.12 (running Guile 3.0)"
    for token in first.split():
        if token[:1].isdigit():
            return token
    raise ToolNotFoundError(f"could not read the LilyPond version from {first!r}")


def patches_dir() -> Path:
    """Return the folder holding msmd-builder's LilyPond include files (``lilypond_patches/``).

    ``MSMD_LILYPOND_PATCHES`` overrides the location; otherwise it is the copy
    shipped with the package (:func:`msmd_builder.core.resources.shipped_path`).
    """
    env = os.environ.get("MSMD_LILYPOND_PATCHES")
    path = Path(env) if env else shipped_path("lilypond_patches")
    if not (path / "msmd.ily").exists():
        raise ToolNotFoundError(
            f"msmd.ily not found in {path}; unset MSMD_LILYPOND_PATCHES or point it at the "
            "lilypond_patches folder of the msmd-builder checkout"
        )
    return path


def run_tool(
    command: Sequence[str],
    *,
    timeout_sec: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    confinement: SandboxSettings | None = None,
    view: SandboxView | None = None,
) -> ToolRun:
    """Run ``command`` in a new process group, killing the whole group on time-out.

    Parameters
    ----------
    command : sequence of str
        Program and arguments.
    timeout_sec : float
        Hard wall-clock limit in seconds.
    cwd : path, optional
        Working directory.
    env : mapping, optional
        Extra environment variables, added to a copy of ``os.environ`` (not
        passed into the sandbox, whose environment is minimal).
    confinement : SandboxSettings, optional
        Resource limits of the run and whether it is sandboxed; ``None`` runs
        the program as it is (for trusted calls such as ``--version``).
    view : SandboxView, optional
        What a sandboxed run sees besides the system's programs; required
        when ``confinement`` is given.

    Returns
    -------
    ToolRun

    Raises
    ------
    ToolNotFoundError
        If ``confinement`` asks for the sandbox (mode ``on``) and bubblewrap
        does not work here.
    """
    full_env = dict(os.environ)
    full_env.setdefault("LANG", "C.UTF-8")
    if env:
        full_env.update(env)
    argv = list(command)
    preexec = None
    sandboxed = False
    if confinement is not None:
        preexec = resource_limiter(confinement.cpu_sec, confinement.memory_mb)
        if confinement.active():
            if view is None:
                raise ValueError("a sandboxed run needs a SandboxView")
            argv = sandbox_command(argv, view, cwd=str(cwd or os.getcwd()))
            sandboxed = True
    started = time.perf_counter()
    # Runs of one process happen one at a time, so the growth of the reaped children's
    # CPU time is this program's (for a sandboxed run, the sandbox reports it).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 - only setrlimit, before exec
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_sec)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    returncode = proc.returncode
    stderr = err.decode("utf-8", errors="replace")
    if sandboxed:
        returncode = signal_of_sandbox_status(returncode)
        stderr, reported = split_cpu_report(stderr)
        cpu_seconds = max(cpu_seconds, reported or 0.0)
    return ToolRun(
        returncode=returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=stderr,
        seconds=time.perf_counter() - started,
        timed_out=timed_out,
        sandboxed=sandboxed,
        cpu_seconds=round(cpu_seconds, 3),
    )
