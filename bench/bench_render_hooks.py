"""What the render stage costs against stock LilyPond on the same normalized sources.

Usage::

    .venv/bin/python bench/bench_render_hooks.py --mutopia-root ../shared/mutopia --sample 16

Draws ``--sample`` solo keyboard pieces at random (``--seed``), normalizes them
once, then times each ``--repeats`` times in three ways, the order rotated
from repeat to repeat so that none always runs first on a warm file cache:

- ``stage``: the render stage as a build runs it (``render.run`` with the
  hooks, the sandbox as ``--sandbox`` says, the page check and any re-layout,
  moving the outputs), wall seconds around the call;
- ``unconfined``: the same stage with the sandbox off (what the hooks and our
  extra outputs cost without bubblewrap);
- ``stock``: the pinned LilyPond on the same normalized main file, same
  working folder, ``--pdf``, no sandbox, with only ``msmd-compat.ily`` (the
  shims for removed Scheme functions that old sources call, without which
  some normalized sources do not compile), not the render and geometry hooks;
  wall seconds.

Prints per mode the median over pieces of the per-piece median seconds and
their total, the median per-piece ratio to stock (and its range) and the
ratio of totals, all measured in this one run; then the pieces with the
largest ratios.  One worker, nothing else should run beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.workdir import WorkDir  # noqa: E402
from msmd_builder.lilypond.tools import lilypond_executable, patches_dir, run_tool  # noqa: E402
from msmd_builder.pipeline.settings import build_settings  # noqa: E402
from msmd_builder.stages import normalize, render  # noqa: E402
from msmd_builder.stages.corpus.index import select_keyboard  # noqa: E402
from msmd_builder.stages.corpus.scan import scan_corpus  # noqa: E402

MODES = ("stage", "unconfined", "stock")


def _stock(piece: normalize.NormalizedPiece, out: Path, timeout_sec: float) -> float:
    """Run LilyPond on the normalized main file with the compatibility shims only; wall seconds."""
    main = PurePosixPath(piece.main_file)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    run = run_tool(
        [
            str(lilypond_executable().resolve()),
            f"-dinclude-settings={(patches_dir() / 'msmd-compat.ily').resolve()}",
            "--pdf",
            f"--output={out / main.stem}",
            main.name,
        ],
        timeout_sec=timeout_sec,
        cwd=Path(piece.source_dir) / main.parent,
    )
    seconds = time.perf_counter() - started
    if run.timed_out or not any(out.glob("*.pdf")):
        raise RuntimeError("stock LilyPond wrote no PDF")
    return seconds


def main() -> None:
    default_root = os.environ.get("MUTOPIA_ROOT", str(REPO.parent / "shared" / "mutopia"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", default=default_root)
    parser.add_argument("--work-dir", default=str(REPO / "build" / "bench-render-hooks"))
    parser.add_argument("--sample", type=int, default=16, help="pieces drawn at random")
    parser.add_argument("--repeats", type=int, default=3, help="runs per piece and mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "on", "off"))
    args = parser.parse_args()

    work = Path(args.work_dir)
    if work.exists():
        shutil.rmtree(work)
    keyboard = select_keyboard(scan_corpus(Path(args.mutopia_root)))
    sample = random.Random(args.seed).sample(keyboard, min(args.sample, len(keyboard)))
    settings = {
        "stage": build_settings(work, args.mutopia_root, until="render", sandbox=args.sandbox),
        "unconfined": build_settings(work, args.mutopia_root, until="render", sandbox="off"),
    }
    timeout = settings["stage"].render.timeout_sec
    normalized = {}
    for entry in sample:
        try:
            normalized[entry.piece_id] = normalize.run(
                entry, settings["stage"].normalize, WorkDir(work).piece(entry.piece_id)
            )
        except Exception as exc:  # noqa: BLE001 - a broken piece is left out of the sample
            print(f"  {entry.piece_id}: not normalized ({type(exc).__name__})")

    seconds: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    layouts: dict[str, str] = {}
    for piece_id, piece in normalized.items():
        piece_dir = WorkDir(work).piece(piece_id)
        for repeat in range(args.repeats):
            shift = repeat % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                try:
                    if mode == "stock":
                        took = _stock(piece, work / "stock" / piece_id, timeout)
                    else:
                        started = time.perf_counter()
                        result = render.run(piece, settings[mode].render, piece_dir, force=True)
                        took = time.perf_counter() - started
                        layouts[piece_id] = result.layout
                except Exception as exc:  # noqa: BLE001 - the piece leaves the comparison
                    print(f"  {piece_id} ({mode}): {type(exc).__name__}: {exc}")
                    break
                seconds[mode].setdefault(piece_id, []).append(took)
        print(
            f"  {piece_id}: "
            + ", ".join(
                f"{mode} {statistics.median(seconds[mode][piece_id]):.2f} s"
                for mode in MODES
                if seconds[mode].get(piece_id)
            ),
            flush=True,
        )

    both = [p for p in normalized if all(len(seconds[m].get(p, [])) == args.repeats for m in MODES)]
    medians = {m: {p: statistics.median(seconds[m][p]) for p in both} for m in MODES}
    print(f"pieces: {len(both)} of {len(sample)} (seed {args.seed}), {args.repeats} runs each")
    for mode in MODES:
        values = medians[mode]
        line = (
            f"  {mode:>10}: median {statistics.median(values.values()):.3f} s, "
            f"total {sum(values.values()):.1f} s"
        )
        if mode != "stock":
            ratios = [values[p] / medians["stock"][p] for p in both]
            line += (
                f"; / stock: median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}), ratio of totals "
                f"{sum(values.values()) / sum(medians['stock'].values()):.3f}"
            )
        print(line)
    relaid = {p: layout for p, layout in layouts.items() if layout and p in both}
    print(f"re-laid out: {len(relaid)} {relaid or ''}")
    worst = sorted(both, key=lambda p: medians["stage"][p] / medians["stock"][p])[-4:]
    for p in reversed(worst):
        print(
            f"  {p}: stage {medians['stage'][p]:.2f} s, stock {medians['stock'][p]:.2f} s "
            f"({medians['stage'][p] / medians['stock'][p]:.2f}x)"
        )


if __name__ == "__main__":
    main()
