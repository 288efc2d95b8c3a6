"""Compare LilyPond versions from PyPI on a sample of Mutopia keyboard pieces.

For each candidate version this script creates (or reuses) a virtualenv with
``pip install lilypond==VERSION`` under a cache directory, draws a seeded,
deterministic sample of keyboard pieces from a Mutopia ``ftp/`` tree, and for
every (piece, version) pair:

1. copies the piece's folder to a fresh temporary directory,
2. runs that version's ``convert-ly -e`` on every ``.ly``/``.ily`` file,
3. runs that version's ``lilypond`` on the main file with a timeout.

It records whether a PDF (and a MIDI file) was written, the number of
``error:`` lines in the log, and the convert-ly and lilypond wall and CPU
seconds; prints one summary table per version plus a per-piece speed ratio;
and optionally writes the raw per-piece results as JSON.

The piece selection here is a deliberately simple grep-level heuristic (a main
``.ly`` file whose ``mutopiainstrument`` header mentions piano, harpsichord or
clavichord); the real corpus scanner lives in ``msmd_builder``.

Example (from the repository root)::

    python bench/lilypond_versions.py --json build/bench/lilypond_versions.json

The Mutopia checkout is taken from ``--mutopia-root``, else the environment
variable ``MUTOPIA_ROOT``, else ``../shared/mutopia`` relative to the
repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VERSIONS = ("2.24.3", "2.25.12")
DEFAULT_VENV_DIR = REPO_ROOT / "build" / "bench-venvs"
KEYBOARD_RE = re.compile(r"piano|harpsichord|clavichord", re.IGNORECASE)
INSTRUMENT_RE = re.compile(r'mutopiainstrument\s*=\s*"([^"]*)"', re.IGNORECASE)
INCLUDE_RE = re.compile(r'\\include\s*"([^"]+)"')
ERROR_LINE_RE = re.compile(r"error:", re.IGNORECASE)
CONVERT_TIMEOUT_SEC = 60.0


@dataclass(frozen=True)
class Toolchain:
    """One installed LilyPond version.

    Attributes
    ----------
    version : str
        The PyPI version of the ``lilypond`` package.
    lilypond : str
        Absolute path of the ``lilypond`` binary.
    convert_ly : str
        Absolute path of ``convert-ly`` (same ``bin`` directory).
    share_dir : str
        The ``share/lilypond/<version>`` directory of that installation.
    """

    version: str
    lilypond: str
    convert_ly: str
    share_dir: str


@dataclass(frozen=True)
class Summary:
    """Aggregates over all results.

    Attributes
    ----------
    per_version : dict
        Version -> counts (``pieces``, ``ok_pdf``, ``pdf_any_exit``, ``with_midi``, ``error_free``,
        ``timeouts``, ``crashes``) and times in seconds (median and total of
        convert-ly wall, lilypond wall and lilypond CPU time).
    speed_ratio : dict
        ``"<v>/<last>"`` -> median over pieces both versions render to PDF of the
        per-piece time ratio (lilypond wall, lilypond CPU, convert-ly wall).
    only : dict
        Version -> pieces that only this version renders to PDF.
    """

    per_version: dict[str, dict[str, float]]
    speed_ratio: dict[str, dict[str, float]]
    only: dict[str, list[str]]


@dataclass(frozen=True)
class PieceResult:
    """Outcome of converting and rendering one piece with one version.

    Attributes
    ----------
    piece : str
        Main file path relative to the Mutopia root (``ftp/...``).
    version : str
        LilyPond version used.
    status : str
        ``ok`` (exit 0 and a PDF), ``no-pdf`` (exit 0, no PDF), ``failed``
        (non-zero exit), ``crashed`` (killed by a signal) or ``timeout``.
    returncode : int | None
        LilyPond's exit status; negative for a signal, ``None`` on timeout.
    pdf : bool
        Whether at least one PDF was written.
    midi : bool
        Whether at least one MIDI file was written.
    n_errors : int
        Number of log lines containing ``error:`` (lilypond run only).
    first_error : str
        The first such line (empty when none), for triage.
    log_tail : str
        The last three non-empty log lines when the status is not ``ok``
        (Guile errors carry no ``error:`` prefix), else empty.
    n_convert_failures : int
        Number of files on which ``convert-ly`` exited non-zero or timed out.
    convert_sec : float
        Wall seconds of all ``convert-ly`` runs for this piece.
    lilypond_sec : float
        Wall seconds of the ``lilypond`` run.
    lilypond_cpu_sec : float
        User + system CPU seconds of the ``lilypond`` run and its children.
    """

    piece: str
    version: str
    status: str
    returncode: int | None
    pdf: bool
    midi: bool
    n_errors: int
    first_error: str
    log_tail: str
    n_convert_failures: int
    convert_sec: float
    lilypond_sec: float
    lilypond_cpu_sec: float


# --------------------------------------------------------------------------- setup


def default_mutopia_root() -> Path:
    """Return ``$MUTOPIA_ROOT`` or ``../shared/mutopia`` beside the repository."""
    env = os.environ.get("MUTOPIA_ROOT")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "mutopia"


def ensure_toolchain(version: str, venv_root: Path) -> Toolchain:
    """Create or reuse a virtualenv with ``lilypond==version`` and locate its tools.

    Parameters
    ----------
    version : str
        PyPI version of the ``lilypond`` package.
    venv_root : Path
        Directory holding one virtualenv per version (``lilypond-<version>``).

    Returns
    -------
    Toolchain
        Paths of that version's ``lilypond`` and ``convert-ly``.
    """
    env_dir = venv_root / f"lilypond-{version}"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".installed"
    if not (marker.exists() and marker.read_text().strip() == version and python.exists()):
        if env_dir.exists():
            shutil.rmtree(env_dir)
        print(f"creating {env_dir} with lilypond=={version}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"lilypond=={version}"],
            check=True,
        )
        marker.write_text(version + "\n")
    out = subprocess.run(
        [str(python), "-c", "import lilypond; print(lilypond.executable())"],
        check=True,
        capture_output=True,
        text=True,
    )
    lily = Path(out.stdout.strip())
    convert = lily.parent / "convert-ly"
    if not (lily.is_file() and convert.is_file()):
        raise FileNotFoundError(f"lilypond or convert-ly missing next to {lily}")
    shares = sorted((lily.parent.parent / "share" / "lilypond").glob("*"))
    share_dir = str(shares[0]) if shares else ""
    return Toolchain(version, str(lily), str(convert), share_dir)


def has_make_performer(tool: Toolchain) -> bool:
    """Tell whether ``make-performer`` is defined in the version's ``lily-library.scm``."""
    lib = Path(tool.share_dir) / "scm" / "lily" / "lily-library.scm"
    return lib.is_file() and "(make-performer" in lib.read_text(errors="replace")


def tool_version_line(tool: Toolchain) -> str:
    """Return the first line of ``lilypond --version``."""
    out = subprocess.run([tool.lilypond, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""


# ----------------------------------------------------------------------- sampling


def piece_folder(main: Path) -> Path:
    """Return the folder to copy for a main file.

    Mutopia keeps sources either beside the main file or in a ``<piece>-lys``
    tree whose sub-folders include ``../`` files; for the latter the folder
    is the parent of the ``-lys`` directory.
    """
    for parent in main.parents:
        if parent.name.endswith("-lys"):
            return parent.parent
    return main.parent


def find_keyboard_mains(mutopia_root: Path) -> list[Path]:
    """List main ``.ly`` files of keyboard pieces under ``mutopia_root/ftp``.

    A file qualifies when its ``mutopiainstrument`` header mentions piano,
    harpsichord or clavichord and no other ``.ly``/``.ily`` file of the same
    folder includes it by name (that drops shared ``-notes.ly`` parts that
    carry a header too).

    Returns
    -------
    list of Path
        Sorted absolute paths.
    """
    ftp = mutopia_root / "ftp"
    if not ftp.is_dir():
        raise FileNotFoundError(f"no ftp/ folder under {mutopia_root}")
    candidates: list[Path] = []
    for path in ftp.rglob("*.ly"):
        match = INSTRUMENT_RE.search(path.read_text(encoding="utf-8", errors="replace"))
        if match and KEYBOARD_RE.search(match.group(1)):
            candidates.append(path)
    included: set[Path] = set()
    for folder in {p.parent for p in candidates}:
        for src in list(folder.glob("*.ly")) + list(folder.glob("*.ily")):
            for name in INCLUDE_RE.findall(src.read_text(encoding="utf-8", errors="replace")):
                included.add((folder / name).resolve())
    return sorted(p for p in candidates if p.resolve() not in included)


def sample_pieces(mains: Sequence[Path], n: int, seed: int) -> list[Path]:
    """Draw ``n`` main files with a seeded RNG (all of them when ``n`` is larger)."""
    if n >= len(mains):
        return list(mains)
    return sorted(random.Random(seed).sample(list(mains), n))


# ------------------------------------------------------------------------ running


def _run_timed(
    cmd: Sequence[str], cwd: Path, timeout: float
) -> tuple[int | None, str, float, float]:
    """Run ``cmd`` in its own process group; kill the group on timeout.

    Returns
    -------
    returncode : int or None
        Exit status (negative for a signal), ``None`` on timeout.
    log : str
        Combined stdout and stderr.
    wall_sec : float
        Wall-clock seconds.
    cpu_sec : float
        User + system CPU seconds of the finished children of this process.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raw, _ = proc.communicate()
        code = None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, raw.decode("utf-8", errors="replace"), wall, cpu


def render_piece(
    mutopia_root: str, piece: str, tool: Toolchain, timeout: float, work_root: str | None
) -> PieceResult:
    """Copy, convert and render one piece with one LilyPond version.

    Parameters
    ----------
    mutopia_root : str
        Root of the Mutopia checkout (contains ``ftp/``).
    piece : str
        Main file relative to ``mutopia_root``.
    tool : Toolchain
        The version to use.
    timeout : float
        Seconds allowed for the ``lilypond`` run.
    work_root : str or None
        Parent for the temporary directory (system default when ``None``).

    Returns
    -------
    PieceResult
        What happened; the temporary copy is deleted.
    """
    main = Path(mutopia_root) / piece
    folder = piece_folder(main)
    with tempfile.TemporaryDirectory(prefix="lyver-", dir=work_root) as tmp:
        dest = Path(tmp) / folder.name
        shutil.copytree(folder, dest, symlinks=True)
        work_main = dest / main.relative_to(folder)
        sources = sorted(p for p in dest.rglob("*") if p.suffix in (".ly", ".ily") and p.is_file())
        convert_sec = 0.0
        convert_failures = 0
        for src in sources:
            code, _, wall, _ = _run_timed(
                [tool.convert_ly, "-e", src.name], src.parent, CONVERT_TIMEOUT_SEC
            )
            convert_sec += wall
            convert_failures += code != 0
        out_dir = work_main.parent
        before = set(out_dir.iterdir())
        code, log, wall, cpu = _run_timed([tool.lilypond, work_main.name], out_dir, timeout)
        new = [p for p in out_dir.iterdir() if p not in before]
        pdf = any(p.suffix == ".pdf" for p in new)
        midi = any(p.suffix in (".mid", ".midi") for p in new)
    error_lines = [line for line in log.splitlines() if ERROR_LINE_RE.search(line)]
    tail = [line.strip() for line in log.splitlines() if line.strip()][-3:]
    if code is None:
        status = "timeout"
    elif code < 0:
        status = "crashed"
    elif code != 0:
        status = "failed"
    else:
        status = "ok" if pdf else "no-pdf"
    return PieceResult(
        piece=piece,
        version=tool.version,
        status=status,
        returncode=code,
        pdf=pdf,
        midi=midi,
        n_errors=len(error_lines),
        first_error=error_lines[0].strip()[:300] if error_lines else "",
        log_tail="" if status == "ok" else "\n".join(tail)[-600:],
        n_convert_failures=convert_failures,
        convert_sec=round(convert_sec, 3),
        lilypond_sec=round(wall, 3),
        lilypond_cpu_sec=round(cpu, 3),
    )


def run_all(
    mutopia_root: Path,
    pieces: Sequence[str],
    tools: Sequence[Toolchain],
    *,
    jobs: int,
    timeout: float,
    work_root: str | None,
) -> list[PieceResult]:
    """Render every piece with every version in ``jobs`` worker processes.

    Tasks are submitted piece by piece with the versions interleaved, so that
    load from other processes on the machine hits all versions alike.
    """
    results: list[PieceResult] = []
    total = len(pieces) * len(tools)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(render_piece, str(mutopia_root), piece, tool, timeout, work_root)
            for piece in pieces
            for tool in tools
        ]
        for done, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            results.append(res)
            print(
                f"[{done:4d}/{total}] {res.version:8s} {res.status:8s} "
                f"{res.lilypond_sec:7.2f}s {res.piece}",
                file=sys.stderr,
                flush=True,
            )
    order = {t.version: i for i, t in enumerate(tools)}
    results.sort(key=lambda r: (r.piece, order[r.version]))
    return results


# ------------------------------------------------------------------------ summary


def _median(values: Iterable[float]) -> float:
    vals = list(values)
    return statistics.median(vals) if vals else float("nan")


def summarize(results: Sequence[PieceResult], versions: Sequence[str]) -> Summary:
    """Aggregate per-version counts and times and cross-version comparisons.

    Speed ratios compare each version with the last one in ``versions``.
    """
    by_version: dict[str, dict[str, PieceResult]] = {v: {} for v in versions}
    for res in results:
        by_version[res.version][res.piece] = res
    per_version: dict[str, dict[str, float]] = {}
    for v in versions:
        rs = list(by_version[v].values())
        per_version[v] = {
            "pieces": len(rs),
            "ok_pdf": sum(r.status == "ok" for r in rs),
            "pdf_any_exit": sum(r.pdf for r in rs),
            "with_midi": sum(r.status == "ok" and r.midi for r in rs),
            "error_free": sum(r.status == "ok" and r.n_errors == 0 for r in rs),
            "timeouts": sum(r.status == "timeout" for r in rs),
            "crashes": sum(r.status == "crashed" for r in rs),
            "convert_median_sec": _median(r.convert_sec for r in rs),
            "convert_total_sec": sum(r.convert_sec for r in rs),
            "lilypond_median_sec": _median(r.lilypond_sec for r in rs),
            "lilypond_total_sec": sum(r.lilypond_sec for r in rs),
            "lilypond_cpu_median_sec": _median(r.lilypond_cpu_sec for r in rs),
            "lilypond_cpu_total_sec": sum(r.lilypond_cpu_sec for r in rs),
        }
    ref = versions[-1]
    speed: dict[str, dict[str, float]] = {}
    for v in versions[:-1]:
        both = [
            (by_version[v][p], by_version[ref][p])
            for p in by_version[v]
            if p in by_version[ref]
            and by_version[v][p].status == "ok"
            and by_version[ref][p].status == "ok"
        ]
        speed[f"{v}/{ref}"] = {
            "pieces": len(both),
            "median_wall_ratio": _median(
                a.lilypond_sec / b.lilypond_sec for a, b in both if b.lilypond_sec > 0
            ),
            "median_cpu_ratio": _median(
                a.lilypond_cpu_sec / b.lilypond_cpu_sec for a, b in both if b.lilypond_cpu_sec > 0
            ),
            "median_convert_ratio": _median(
                a.convert_sec / b.convert_sec for a, b in both if b.convert_sec > 0
            ),
        }
    only: dict[str, list[str]] = {}
    for v in versions:
        others = [o for o in versions if o != v]
        only[v] = sorted(
            p
            for p, r in by_version[v].items()
            if r.status == "ok"
            and all(by_version[o].get(p) is None or by_version[o][p].status != "ok" for o in others)
        )
    return Summary(per_version=per_version, speed_ratio=speed, only=only)


def print_summary(summary: Summary, versions: Sequence[str]) -> None:
    """Print the summary as a Markdown table followed by the comparisons."""
    per_version = summary.per_version
    print()
    print(
        "| version | pieces | ok (exit 0 + PDF) | PDF, any exit | with MIDI | error-free "
        "| timeouts | crashes "
        "| convert-ly median / total s | lilypond median / total s "
        "| lilypond CPU median / total s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in versions:
        s = per_version[v]
        print(
            f"| {v} | {s['pieces']} | {s['ok_pdf']} | {s['pdf_any_exit']} | {s['with_midi']} "
            f"| {s['error_free']} "
            f"| {s['timeouts']} | {s['crashes']} "
            f"| {s['convert_median_sec']:.2f} / {s['convert_total_sec']:.1f} "
            f"| {s['lilypond_median_sec']:.2f} / {s['lilypond_total_sec']:.1f} "
            f"| {s['lilypond_cpu_median_sec']:.2f} / {s['lilypond_cpu_total_sec']:.1f} |"
        )
    speed = summary.speed_ratio
    print()
    for name, s in speed.items():
        print(
            f"per-piece time ratio {name} over {s['pieces']} pieces both rendered: "
            f"lilypond wall median {s['median_wall_ratio']:.3f}, "
            f"CPU median {s['median_cpu_ratio']:.3f}, "
            f"convert-ly median {s['median_convert_ratio']:.3f}"
        )
    only = summary.only
    for v in versions:
        print(f"rendered only by {v}: {len(only[v])}")
        for p in only[v]:
            print(f"  {p}")


# ---------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--versions",
        nargs="+",
        default=list(DEFAULT_VERSIONS),
        help="PyPI lilypond versions; ratios are relative to the last one",
    )
    ap.add_argument(
        "--mutopia-root",
        type=Path,
        default=None,
        help="Mutopia checkout (default: $MUTOPIA_ROOT or ../shared/mutopia)",
    )
    ap.add_argument(
        "--venv-dir",
        type=Path,
        default=DEFAULT_VENV_DIR,
        help="cache of one virtualenv per version (default: build/bench-venvs)",
    )
    ap.add_argument("--sample", type=int, default=60, help="number of pieces (default 60)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per lilypond run (default 120)"
    )
    ap.add_argument(
        "--work-dir",
        default=None,
        help="parent of the temporary piece copies (default: system temp)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write raw results here")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = parse_args(argv)
    root = (args.mutopia_root or default_mutopia_root()).resolve()
    tools = [ensure_toolchain(v, args.venv_dir.resolve()) for v in args.versions]
    for tool in tools:
        print(
            f"{tool.version}: {tool_version_line(tool)}; "
            f"make-performer in lily-library.scm: {has_make_performer(tool)}",
            file=sys.stderr,
        )
    mains = find_keyboard_mains(root)
    pieces = [str(p.relative_to(root)) for p in sample_pieces(mains, args.sample, args.seed)]
    print(
        f"{len(mains)} keyboard main files; sampled {len(pieces)} (seed {args.seed})",
        file=sys.stderr,
    )
    start = time.perf_counter()
    results = run_all(
        root, pieces, tools, jobs=args.jobs, timeout=args.timeout, work_root=args.work_dir
    )
    elapsed = time.perf_counter() - start
    summary = summarize(results, args.versions)
    print_summary(summary, args.versions)
    print(f"\nwall time {elapsed:.0f} s with {args.jobs} jobs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "meta": {
                "versions": args.versions,
                "version_lines": {t.version: tool_version_line(t) for t in tools},
                "make_performer": {t.version: has_make_performer(t) for t in tools},
                "keyboard_mains": len(mains),
                "sample": args.sample,
                "seed": args.seed,
                "jobs": args.jobs,
                "timeout_sec": args.timeout,
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "wall_sec": round(elapsed, 1),
            },
            "summary": asdict(summary),
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
