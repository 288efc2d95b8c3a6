"""What the sandbox costs, and whether LilyPond's own ``-dsafe`` is an alternative.

Usage::

    .venv/bin/python bench/bench_sandbox.py --mutopia-root ../shared/mutopia --sample 20

Draws ``--sample`` solo keyboard pieces at random (``--seed``), normalizes them
once, then renders each ``--repeats`` times with ``--sandbox on`` and
``--sandbox off`` in alternation (one worker, forced re-render, so both modes
see the same machine load), and prints per mode the median LilyPond seconds
and the median over pieces of the ratio sandboxed / unsandboxed, all measured
in this one run.  It also normalizes every piece with and without the sandbox
(convert-ly runs confined too).

Then it runs the pinned LilyPond with ``-dsafe`` on the same pieces and counts
what breaks: LilyPond's own safe mode would be the obvious alternative to a
sandbox.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.workdir import WorkDir  # noqa: E402
from msmd_builder.lilypond.sandbox import sandbox_problem  # noqa: E402
from msmd_builder.lilypond.tools import lilypond_executable, run_tool  # noqa: E402
from msmd_builder.pipeline.settings import build_settings  # noqa: E402
from msmd_builder.stages import normalize, render  # noqa: E402
from msmd_builder.stages.corpus.index import select_keyboard  # noqa: E402
from msmd_builder.stages.corpus.scan import scan_corpus  # noqa: E402


def main() -> None:
    default_root = os.environ.get("MUTOPIA_ROOT", str(REPO.parent / "shared" / "mutopia"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", default=default_root)
    parser.add_argument("--work-dir", default=str(REPO / "build" / "bench-sandbox"))
    parser.add_argument("--sample", type=int, default=20, help="pieces drawn at random")
    parser.add_argument("--repeats", type=int, default=3, help="renders per piece and mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if sandbox_problem():
        sys.exit(f"the sandbox does not work here: {sandbox_problem()}")

    work = Path(args.work_dir)
    if work.exists():
        shutil.rmtree(work)
    keyboard = select_keyboard(scan_corpus(Path(args.mutopia_root)))
    sample = random.Random(args.seed).sample(keyboard, min(args.sample, len(keyboard)))
    settings = {
        mode: build_settings(work, args.mutopia_root, until="render", sandbox=mode)
        for mode in ("on", "off")
    }
    normalize_seconds: dict[str, list[float]] = {"on": [], "off": []}
    normalized = {}
    for entry in sample:
        piece_dir = WorkDir(work).piece(entry.piece_id)
        for mode in ("off", "on"):
            started = time.perf_counter()
            try:
                normalized[entry.piece_id] = normalize.run(
                    entry, settings[mode].normalize, piece_dir, force=True
                )
            except Exception as exc:  # noqa: BLE001 - a broken piece is left out of the sample
                print(f"  {entry.piece_id}: not normalized ({exc})")
                break
            normalize_seconds[mode].append(time.perf_counter() - started)

    seconds: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    for piece_id, piece in normalized.items():
        piece_dir = WorkDir(work).piece(piece_id)
        for repeat in range(args.repeats):
            # Alternate which mode goes first, so neither always finds a warm cache.
            for mode in ("on", "off") if repeat % 2 == 0 else ("off", "on"):
                try:
                    result = render.run(piece, settings[mode].render, piece_dir, force=True)
                except Exception as exc:  # noqa: BLE001 - failures cost time in both modes
                    print(f"  {piece_id} ({mode}): {type(exc).__name__}")
                    break
                seconds[mode].setdefault(piece_id, []).append(result.seconds)
    both = [p for p in normalized if p in seconds["on"] and p in seconds["off"]]
    medians = {
        mode: {p: statistics.median(seconds[mode][p]) for p in both} for mode in ("on", "off")
    }
    ratios = [medians["on"][p] / medians["off"][p] for p in both]
    print(f"pieces: {len(both)} of {len(sample)} (seed {args.seed}), {args.repeats} renders each")
    for mode in ("off", "on"):
        median = statistics.median(medians[mode].values())
        print(
            f"  sandbox {mode:>3}: LilyPond median {median:.3f} s,"
            f" total {sum(medians[mode].values()):.1f} s (per-piece medians); normalize median "
            f"{statistics.median(normalize_seconds[mode]):.3f} s"
        )
    print(
        f"  sandboxed / unsandboxed: median ratio {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}), ratio of totals "
        f"{sum(medians['on'].values()) / sum(medians['off'].values()):.3f}"
    )

    outcomes: Counter[str] = Counter()
    for piece_id, piece in normalized.items():
        main = PurePosixPath(piece.main_file)
        out = work / "dsafe" / piece_id
        out.mkdir(parents=True, exist_ok=True)
        run = run_tool(
            [str(lilypond_executable()), "-dsafe", f"--output={out / main.stem}", main.name],
            timeout_sec=300,
            cwd=Path(piece.source_dir) / main.parent,
        )
        fatal = next((ln for ln in run.stderr.splitlines() if "fatal error" in ln), "")
        made_pdf = any(out.glob("*.pdf"))
        outcomes[f"{'PDF' if made_pdf else 'no PDF'}; {fatal or 'no fatal error'}"] += 1
    print(f"lilypond -dsafe on the same {len(normalized)} pieces:")
    for outcome, count in outcomes.most_common():
        print(f"  {count:4d}  {outcome}")


if __name__ == "__main__":
    main()
