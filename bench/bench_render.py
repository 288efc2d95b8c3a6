"""Render every selected keyboard piece of a Mutopia checkout and print the figures.

Usage::

    .venv/bin/python bench/bench_render.py --mutopia-root ../shared/mutopia --workers 2

Runs the corpus scan, then normalize + render for every solo keyboard piece
into a fresh work directory (``--work-dir``, default ``build/bench-render``;
``--keep`` reuses it, which measures the cached no-op path instead). Prints the
outcome counts, failure classes, median and total LilyPond and convert-ly
seconds, and the wall time; the full report is in ``<work-dir>/reports/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.pipeline.report import write_report
from msmd_builder.pipeline.run import run_pieces
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages.corpus.index import select_keyboard, write_index
from msmd_builder.stages.corpus.scan import scan_corpus  # noqa: E402


def main() -> None:
    default_root = os.environ.get("MUTOPIA_ROOT", str(REPO.parent / "shared" / "mutopia"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", default=default_root)
    parser.add_argument("--work-dir", default=str(REPO / "build" / "bench-render"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pieces")
    parser.add_argument("--keep", action="store_true", help="reuse the work dir (cached run)")
    args = parser.parse_args()

    work = Path(args.work_dir)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    started = time.perf_counter()
    entries = scan_corpus(Path(args.mutopia_root))
    scan_sec = time.perf_counter() - started
    write_index(entries, work / "index.csv")
    keyboard = select_keyboard(entries)[: args.limit]
    settings = build_settings(work, args.mutopia_root)
    started = time.perf_counter()
    outcomes = run_pieces(keyboard, settings, workers=args.workers)
    wall = time.perf_counter() - started
    json_path, md_path = write_report(
        outcomes, out_dir=work / "reports", name="render", wall_seconds=wall, workers=args.workers
    )

    counts = Counter(o.status for o in outcomes)
    classes = Counter(o.error_class for o in outcomes if o.status == "failed")
    degraded = Counter(
        o.details.get("degraded_class", "") for o in outcomes if o.status == "degraded"
    )
    lily = [
        float(o.details["lilypond_seconds"]) for o in outcomes if "lilypond_seconds" in o.details
    ]
    norm = [o.seconds["normalize"] for o in outcomes if "normalize" in o.seconds]
    produced = sum(
        1 for o in outcomes if o.details.get("pdf_files") and o.details.get("midi_files")
    )
    complete = counts["ok"] + counts["degraded"]
    n = len(outcomes)
    n_keyboard = len(select_keyboard(entries))
    print(f"corpus scan: {len(entries)} pieces, {n_keyboard} keyboard, {scan_sec:.1f} s")
    print(f"pieces rendered: {n} with {args.workers} worker(s), wall {wall:.1f} s")
    print(f"  PDF + MIDI: {produced} ({100 * produced / max(n, 1):.1f} %)")
    print(f"    without LilyPond errors: {counts['ok']} ({100 * counts['ok'] / max(n, 1):.1f} %)")
    print(f"    with recovered errors (degraded): {counts['degraded']} {dict(degraded)}")
    print(f"  through every stage (aligned): {complete} ({100 * complete / max(n, 1):.1f} %)")
    print(f"  failed: {counts['failed']} {dict(classes.most_common())}")
    if lily:
        print(f"  LilyPond seconds: median {statistics.median(lily):.2f}, total {sum(lily):.1f}")
    if norm:
        print(
            f"  normalize (copy + convert-ly) seconds: median {statistics.median(norm):.2f}, "
            f"total {sum(norm):.1f}"
        )
    print(f"report: {md_path}")


if __name__ == "__main__":
    main()
