"""Full dataset build: wall time, per-stage split, worker speed-up, no-op rebuild, memory, sizes.

Usage::

    .venv/bin/python bench/bench_dataset.py --mutopia-root ../shared/mutopia --workers 2
    .venv/bin/python bench/bench_dataset.py --speedup-sample 24     # 1 vs 2 workers only

Runs ``msmd-build dataset`` (MSMD's performance recipe, splits all /
bach-only / bach-out, plus ``--split-file`` imports) as a child process into a
fresh work and output directory (``--keep`` reuses them), then prints:

- wall time, and the summed seconds of each stage with their share of the
  CPU time (LilyPond and FluidSynth named apart);
- the no-op rebuild time (median of ``--noop-runs`` reruns);
- the peak resident memory of a worker (with its LilyPond children);
- shard bytes per piece and per split;
- with ``--speedup-sample N``: the same build of N seeded-random pieces with
  1 and with 2 workers in fresh directories, ``--speedup-runs`` times (default
  3), the ratio of the two wall times of each run and their median, and
  whether the shards and manifests of all these clean builds are the same
  byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "msmd-build"


def run_build(root: str, work: Path, out: Path, workers: int, extra: list[str]) -> float:
    command = [
        str(BIN),
        "dataset",
        root,
        "--work-dir",
        str(work),
        "--out",
        str(out),
        "--workers",
        str(workers),
        *extra,
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def fresh(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            shutil.rmtree(path)


def shard_digests(out: Path) -> dict[str, str]:
    """SHA-256 of every shard file and manifest under ``out`` (split files and report aside)."""
    import hashlib

    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.suffix in (".h5", ".json") and path.parent != out
    }


def print_figures(out: Path, wall: float) -> None:
    report = json.loads((out / "report.json").read_text())
    summary, pieces = report["summary"], report["pieces"]
    stage = summary["stage_seconds_total"]
    perf = summary.get("performance_totals") or {}
    perf_sec = perf.get("seconds", {})
    phases = summary.get("phase_seconds", {})
    cpu = sum(stage.values()) + sum(phases.get(k, 0) for k in ("splits", "shards"))
    print(f"pieces: {summary['pieces']}  {summary['status_counts']}")
    print(f"wall: {wall:.1f} s ({wall / 60:.1f} min) with {summary['workers']} workers")
    print("stage seconds (sum over pieces, share of their sum):")
    for name, sec in stage.items():
        print(f"  {name:10s} {sec:9.1f}  {100 * sec / cpu:5.1f} %")
    for name in ("splits", "shards"):
        sec = phases.get(name, 0.0)
        print(f"  {name:10s} {sec:9.1f}  {100 * sec / cpu:5.1f} %")
    print(
        "phases (wall seconds): "
        + ", ".join(f"{name} {sec:.1f}" for name, sec in phases.items())
        + f"; worker idle time in the per-piece phase {summary.get('worker_idle_seconds')} s"
    )
    lily = summary["lilypond_seconds_total"]
    synth = perf_sec.get("synthesis", 0.0)
    print(
        f"  of which LilyPond {lily:.1f} s ({100 * lily / cpu:.1f} %), FluidSynth synthesis "
        f"{synth:.1f} s ({100 * synth / cpu:.1f} %), spectrograms "
        f"{perf_sec.get('spectrogram', 0.0):.1f} s, onset checks "
        f"{perf_sec.get('onset_check', 0.0):.1f} s"
    )
    if perf:
        print(
            f"performances: {perf['performances']}, audio {perf['audio_hours']} h "
            f"{perf['audio_hours_per_soundfont']}"
        )
    rss = [p["details"].get("worker_max_rss_mb") for p in pieces]
    rss = [r for r in rss if r]
    if rss:
        print(f"peak worker memory: {max(rss):.0f} MiB (median {statistics.median(rss):.0f})")
    built = summary["status_counts"].get("ok", 0) + summary["status_counts"].get("degraded", 0)
    for split, shards in summary.get("shards", {}).items():
        size = sum(p["bytes"] for p in shards["parts"].values())
        n = sum(p["counts"].get("pieces", 0) for p in shards["parts"].values())
        print(
            f"shards {split}: {size / 2**20:.0f} MiB for {n} pieces, "
            f"{size / max(n, 1) / 2**20:.2f} MiB per piece"
        )
    print(f"built pieces: {built}")


def main() -> None:
    default_root = os.environ.get("MUTOPIA_ROOT", str(REPO.parent / "shared" / "mutopia"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", default=default_root)
    parser.add_argument("--work-dir", type=Path, default=REPO / "build" / "bench-dataset" / "work")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench-dataset" / "out")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="reuse work and output directories")
    parser.add_argument("--noop-runs", type=int, default=3)
    parser.add_argument("--split-file", action="append", default=[])
    parser.add_argument(
        "--speedup-sample",
        type=int,
        default=0,
        help="only measure 1 vs 2 workers on N seeded-random pieces",
    )
    parser.add_argument(
        "--speedup-runs", type=int, default=3, help="pairs of runs for --speedup-sample"
    )
    args = parser.parse_args()
    extra = [arg for f in args.split_file for arg in ("--split-file", f)]

    if args.speedup_sample:
        from msmd_builder.stages.corpus.index import select_keyboard
        from msmd_builder.stages.corpus.scan import scan_corpus

        ids = sorted(e.piece_id for e in select_keyboard(scan_corpus(Path(args.mutopia_root))))
        sample = random.Random(0).sample(ids, args.speedup_sample)
        walls: dict[int, list[float]] = {1: [], 2: []}
        ratios = []
        digests: list[dict[str, str]] = []
        for run in range(args.speedup_runs):
            for workers in (1, 2):
                work, out = (
                    args.work_dir.with_name(f"speedup-{workers}"),
                    args.out.with_name(f"speedup-out-{workers}"),
                )
                fresh(work, out)
                pieces = [arg for p in sample for arg in ("--piece", p)]
                walls[workers].append(run_build(args.mutopia_root, work, out, workers, pieces))
                digests.append(shard_digests(out))
                print(
                    f"run {run + 1}: {len(sample)} pieces, {workers} worker(s): "
                    f"{walls[workers][-1]:.1f} s",
                    flush=True,
                )
            ratios.append(walls[1][-1] / walls[2][-1])
            print(f"run {run + 1}: speed-up 1 -> 2 workers {ratios[-1]:.3f}x", flush=True)
        print(
            f"median wall: 1 worker {statistics.median(walls[1]):.1f} s, 2 workers "
            f"{statistics.median(walls[2]):.1f} s; speed-up per run "
            f"{[round(r, 3) for r in ratios]}, median {statistics.median(ratios):.3f}x"
        )
        same = all(d == digests[0] for d in digests)
        print(
            f"shards and manifests of the {len(digests)} clean builds: "
            + (
                f"byte for byte the same ({len(digests[0])} files)"
                if same
                else "DIFFER: "
                + ", ".join(
                    sorted({k for d in digests for k in d if d.get(k) != digests[0].get(k)})
                )
            )
        )
        return

    if not args.keep:
        fresh(args.work_dir, args.out)
    wall = run_build(args.mutopia_root, args.work_dir, args.out, args.workers, extra)
    print_figures(args.out, wall)
    noop = [
        run_build(args.mutopia_root, args.work_dir, args.out, args.workers, extra)
        for _ in range(args.noop_runs)
    ]
    print(f"no-op rebuild: median {statistics.median(noop):.1f} s of {[round(x, 1) for x in noop]}")


if __name__ == "__main__":
    main()
