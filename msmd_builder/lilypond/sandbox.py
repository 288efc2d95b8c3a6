"""Confine the programs that read sources we did not write: bubblewrap and resource limits.

A Mutopia file is a program: LilyPond runs its embedded Scheme, which can call
``system``, open files and sockets, loop forever or allocate without end.  Two
independent fences hold it:

* **Resource limits** (always on): CPU seconds, address space, file size and no
  core dumps, set with ``setrlimit`` in the child before it starts, so a runaway
  piece ends as a classified ``timeout`` or ``memory`` failure.
* **The sandbox** (``bwrap``, from the ``bubblewrap`` package; ``--sandbox``):
  the program sees the system's ``/usr`` (libraries, ``/bin/sh``) and LilyPond's
  own files read-only, the piece's normalized sources read-only, one writable
  scratch folder, a private ``/tmp``, no network, its own PID namespace, a
  minimal environment; it is killed with the build (``--die-with-parent``).
  Nothing else of the machine (home folders, ``/etc``, the corpus, the work
  directory) exists inside.

``docs/security.md`` states the trust model and what the tests prove.
"""

from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from msmd_builder.core.errors import ConfigError, ToolNotFoundError

__all__ = [
    "SANDBOX_MODES",
    "DEFAULT_CPU_SEC",
    "DEFAULT_MEMORY_MB",
    "MAX_FILE_MB",
    "SandboxSettings",
    "SandboxView",
    "sandbox_problem",
    "sandbox_command",
    "resource_limiter",
    "signal_of_sandbox_status",
    "split_cpu_report",
]

#: ``--sandbox`` values: ``auto`` (where bubblewrap works, else a warning in the
#: report), ``on`` (a build stops at start without it), ``off``.
SANDBOX_MODES = ("auto", "on", "off")
#: Per-run CPU-time limit, seconds.  LilyPond's garbage collector marks in
#: parallel, so CPU time may exceed wall-clock time; the wall-clock limit
#: (``--timeout``) usually ends a hang first.
DEFAULT_CPU_SEC = 600.0
#: Per-run address-space limit, MiB.  The largest Mutopia keyboard piece
#: (Chopin's first Ballade) peaks at about 0.7 GiB of address space.
DEFAULT_MEMORY_MB = 4096
#: Largest file a confined program may write, MiB (a PDF of a long piece is a few MiB).
MAX_FILE_MB = 1024
#: Size of the private ``/tmp`` inside the sandbox, MiB (it lives in memory).
PRIVATE_TMP_MB = 256

_INSTALL_HINT = (
    "install bubblewrap (`apt-get install bubblewrap`, or `make setup`), "
    "or build with --sandbox auto or --sandbox off"
)
#: Line the in-sandbox shell prints before its ``times`` report (see :func:`sandbox_command`).
_CPU_MARKER = "msmd-sandbox-cpu-times"
#: The shell that runs the command inside the sandbox: it reports the CPU time of the
#: command, which does not reach this process (bwrap does not pass on its children's usage).
_REPORTING_SHELL = f'"$@"; status=$?; printf "\\n{_CPU_MARKER}\\n" >&2; times >&2; exit $status'
_TIMES = re.compile(r"(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s")
#: Top-level folders mirrored read-only from the host: the system's programs and libraries.
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True)
class SandboxSettings:
    """How LilyPond and convert-ly are confined.

    Attributes
    ----------
    mode : {"auto", "on", "off"}
        Whether runs happen inside bubblewrap (see :data:`SANDBOX_MODES`).
    cpu_sec : float
        CPU-time limit of one run, seconds (``timeout`` class when hit).
    memory_mb : int
        Address-space limit of one run, MiB (``memory`` class when hit).
    """

    mode: str = "auto"
    cpu_sec: float = DEFAULT_CPU_SEC
    memory_mb: int = DEFAULT_MEMORY_MB

    def __post_init__(self) -> None:
        if self.mode not in SANDBOX_MODES:
            raise ConfigError(
                f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got {self.mode!r}"
            )
        if not self.cpu_sec >= 1:
            raise ConfigError(f"the CPU-time limit must be >= 1 s, got {self.cpu_sec!r}")
        if not self.memory_mb >= 64:
            raise ConfigError(f"the memory limit must be >= 64 MiB, got {self.memory_mb!r}")

    def active(self) -> bool:
        """Return whether runs are sandboxed now.

        Raises
        ------
        ToolNotFoundError
            With mode ``on`` when bubblewrap does not work here (with the fix).
        """
        if self.mode == "off":
            return False
        problem = sandbox_problem()
        if problem and self.mode == "on":
            raise ToolNotFoundError(f"--sandbox on: {problem}; {_INSTALL_HINT}")
        return not problem

    def describe(self) -> str:
        """One word for records and reports: ``bwrap``, ``off`` or ``unavailable``."""
        if self.mode == "off":
            return "off"
        return "bwrap" if self.active() else "unavailable"


@dataclass(frozen=True)
class SandboxView:
    """The file system one confined run sees besides the system's programs.

    Attributes
    ----------
    read_only : tuple of str
        Folders visible read-only at their own paths (LilyPond's installation,
        our hooks, the piece's normalized sources).
    writable : tuple of str
        Folders visible read-write (the one scratch folder of the run).
    """

    read_only: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _base_arguments() -> list[str]:
    """Options shared by every bwrap run: namespaces, system folders, private /tmp, environment."""
    args = ["--unshare-all", "--die-with-parent", "--new-session"]
    args += ["--size", str(PRIVATE_TMP_MB << 20), "--tmpfs", "/tmp"]
    for name in _SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--dev", "/dev", "--proc", "/proc", "--clearenv"]
    for key, value in (
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ):
        args += ["--setenv", key, value]
    return args


@functools.cache
def sandbox_problem() -> str:
    """Return why bubblewrap cannot confine a program here, or ``""`` when it can.

    Runs ``/bin/true`` with the same options as a real run: a kernel without
    unprivileged user namespaces, or a container that forbids them, fails here
    rather than on the first piece.
    """
    bwrap = _bwrap()
    if bwrap is None:
        return "bwrap (bubblewrap) is not installed"
    probe = [bwrap, *_base_arguments(), "--", "/bin/true"]
    try:
        run = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not start ({exc})"
    if run.returncode != 0:
        message = run.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return f"bwrap cannot create a sandbox here ({message[-1] if message else run.returncode})"
    return ""


def sandbox_command(command: Sequence[str], view: SandboxView, *, cwd: str) -> list[str]:
    """Return ``command`` wrapped in bubblewrap with the file system of ``view``.

    Paths are made canonical (symbolic links resolved) so each appears inside
    at the path the command names.  Parents are mounted before their children.
    Inside, ``/bin/sh`` runs the command and then reports its CPU time on
    standard error (:func:`split_cpu_report` takes it off again).

    Raises
    ------
    ToolNotFoundError
        If ``bwrap`` is not installed.
    """
    bwrap = _bwrap()
    if bwrap is None:
        raise ToolNotFoundError(f"bwrap (bubblewrap) is not installed; {_INSTALL_HINT}")
    mounts = [(os.path.realpath(p), "--ro-bind") for p in view.read_only]
    mounts += [(os.path.realpath(p), "--bind") for p in view.writable]
    mounts.sort(key=lambda mount: (mount[0].count(os.sep), mount[1] == "--bind"))
    args = [bwrap, *_base_arguments()]
    for path, kind in mounts:
        args += [kind, path, path]
    args += ["--chdir", os.path.realpath(cwd), "--", "/bin/sh", "-c", _REPORTING_SHELL, "sh"]
    return args + list(command)


def split_cpu_report(stderr: str) -> tuple[str, float | None]:
    """Split the sandbox shell's CPU report off a sandboxed run's standard error.

    Returns
    -------
    stderr : str
        The program's own standard error.
    cpu_seconds : float or None
        User and system time of the program and its children (None when the
        report is missing, e.g. when the sandbox itself was killed).
    """
    position = stderr.rfind(f"\n{_CPU_MARKER}\n")
    if position < 0:
        return stderr, None
    lines = stderr[position:].strip().splitlines()
    times = _TIMES.match(lines[2]) if len(lines) >= 3 else None
    if times is None:
        return stderr[:position], None
    minutes_user, user, minutes_sys, system = times.groups()
    cpu = 60 * int(minutes_user) + float(user) + 60 * int(minutes_sys) + float(system)
    return stderr[:position], cpu


def resource_limiter(cpu_sec: float, memory_mb: int) -> Callable[[], None]:
    """Return a function that sets the limits of a run in the child, before it executes.

    CPU time (soft limit: ``SIGXCPU``, which LilyPond's garbage collector
    uses for itself; a hard limit one second later: ``SIGKILL``), address
    space, the size of any written file, and no core dumps.  The limits pass
    to every process the program starts.
    """
    cpu = max(1, int(cpu_sec))
    memory = int(memory_mb) << 20
    file_size = MAX_FILE_MB << 20

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def signal_of_sandbox_status(returncode: int) -> int:
    """Map bwrap's exit status to ``subprocess``'s convention (negative signal number).

    bwrap reports a program killed by signal *n* as status ``128 + n``;
    without the sandbox, :mod:`subprocess` reports ``-n``.
    """
    if 128 < returncode < 128 + 65:
        return -(returncode - 128)
    return returncode
