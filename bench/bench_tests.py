"""Wall and CPU time of test runs: serial against pytest-xdist workers, full against fast.

Usage::

    .venv/bin/python bench/bench_tests.py                       # serial, then -n 2, full set
    .venv/bin/python bench/bench_tests.py --runs "-n 2" "-n 2 -m 'not slow'"

Runs ``pytest -q -p no:cacheprovider --dist loadfile <run>`` (``--dist`` only
with ``-n``) for each ``--runs`` entry, one after the other, from the
repository root, and prints for each: wall seconds, CPU seconds of pytest and
everything it waited for (LilyPond, FluidSynth, xdist workers, pool
workers), the 1-minute load average before and after (a loaded machine
stretches wall time, far less CPU time), and pytest's closing line.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(arguments: str, extra: list[str]) -> None:
    """Run one pytest invocation and print its figures."""
    args = shlex.split(arguments)
    if "-n" in args:
        args += ["--dist", "loadfile"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *extra]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    closing = lines[-1].strip("= ") if lines else f"no output (exit {result.returncode})"
    print(
        f"pytest {arguments or '(serial)'}: wall {wall:.0f} s, CPU {cpu:.0f} s, "
        f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f}; {closing}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", nargs="+", default=["", "-n 2"], help="pytest arguments of each run"
    )
    parser.add_argument("extra", nargs="*", help="appended to every run (test paths, -k ...)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; MUTOPIA_ROOT={os.environ.get('MUTOPIA_ROOT', '(unset)')}")
    for arguments in args.runs:
        run(arguments, args.extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
