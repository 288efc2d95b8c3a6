"""What the measures cost per piece: LilyPond's side and Python's, against render + score.

Usage::

    .venv/bin/python bench/bench_measures.py --mutopia-root ../shared/mutopia --pieces 20

Draws ``--pieces`` solo keyboard pieces at random (``--seed``), normalizes them,
then ``--repeats`` times each, alternating: renders with the hooks as shipped
and with a copy of the hooks whose measure engraver is not consisted (the
measures table is then empty), and times the score stage (with the measures
read, boxed in pixels and checked) and the align stage's measure occurrences
(:func:`~msmd_builder.stages.align.measures.rendered_measure_times`).  Per
piece the median of each is taken; printed are the medians over pieces of

* the extra LilyPond seconds (with - without the measure engraver),
* the Python seconds of the measures (read, pixel boxes, checks, occurrences),
* their sum, and that sum as a share of render + score seconds.

Seconds are CPU seconds (user + system: LilyPond's from the children's
resource usage, the stages' from this process), which other load on a shared
machine disturbs far less than wall-clock time; the wall-clock medians are
printed too.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from msmd_builder.core.workdir import PieceDir  # noqa: E402
from msmd_builder.lilypond.tools import patches_dir  # noqa: E402
from msmd_builder.stages import normalize, render, score  # noqa: E402
from msmd_builder.stages.align.measures import rendered_measure_times  # noqa: E402
from msmd_builder.stages.align.stage import align_tables  # noqa: E402
from msmd_builder.stages.corpus.index import select_keyboard  # noqa: E402
from msmd_builder.stages.corpus.scan import scan_corpus  # noqa: E402
from msmd_builder.stages.measures import (  # noqa: E402
    bar_number_order,
    notehead_measures,
    read_measures,
)

_ENGRAVER_LINE = "  \\context { \\Score \\consists #msmd-measure-engraver }\n"


def hooks_without_measures(folder: Path) -> Path:
    """A copy of the hooks whose layout does not consist the measure engraver."""
    shutil.copytree(patches_dir(), folder, dirs_exist_ok=True)
    geometry = folder / "msmd-geometry.ily"
    text = geometry.read_text(encoding="utf-8")
    if _ENGRAVER_LINE not in text:
        raise SystemExit("the measure engraver line was not found in msmd-geometry.ily")
    geometry.write_text(text.replace(_ENGRAVER_LINE, ""), encoding="utf-8")
    return folder


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args, **kwargs):
    """Run ``function``; return its result, its CPU seconds (with children's) and wall seconds."""
    cpu, children, wall = time.process_time(), children_cpu(), time.perf_counter()
    result = function(*args, **kwargs)
    spent = time.process_time() - cpu + children_cpu() - children
    return result, spent, time.perf_counter() - wall


def measure_python_seconds(rendered: render.RenderResult, scored: score.ScoreResult) -> float:
    """CPU seconds of the measures' Python work on one rendered piece."""
    noteheads, systems = scored.load()
    pages = [score.PageImage(**page) for page in scored.pages]
    started = time.process_time()
    measures = score.add_pixel_boxes(
        read_measures(rendered.render_dir, list(rendered.pdf_files)), pages
    )
    notehead_measures(noteheads, measures)
    bar_number_order(measures)
    spent = time.process_time() - started
    performed, _ = align_tables(
        noteheads, systems, rendered.render_dir, list(rendered.midi_files), repeats="unfolded"
    )
    started = time.process_time()
    rendered_measure_times(rendered.render_dir, performed, noteheads, measures)
    return spent + time.process_time() - started


def main() -> None:
    default_root = os.environ.get("MUTOPIA_ROOT", str(REPO.parent / "shared" / "mutopia"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutopia-root", default=default_root)
    parser.add_argument("--work-dir", default=str(REPO / "build" / "bench-measures"))
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = Path(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    keyboard = select_keyboard(scan_corpus(Path(args.mutopia_root)))
    chosen = random.Random(args.seed).sample(keyboard, min(args.pieces, len(keyboard)))
    shipped = patches_dir()
    stripped = hooks_without_measures(Path(tempfile.mkdtemp(prefix="msmd-hooks-")))
    lily_extra, python_sec, baseline, shares, walls = [], [], [], [], []
    for entry in chosen:
        piece_dir = PieceDir.of(work, entry.piece_id)
        bare_dir = PieceDir.of(work / "without", entry.piece_id)
        try:
            normalized = normalize.run(
                entry, normalize.NormalizeSettings(args.mutopia_root), piece_dir
            )
        except Exception as exc:  # noqa: BLE001 - a benchmark skips what does not build
            print(f"skip {entry.piece_id}: {exc.__class__.__name__}")
            continue
        with_sec, without_sec, score_sec, py_sec, wall_sec = [], [], [], [], []
        settings = render.RenderSettings()
        try:
            for _ in range(args.repeats):
                os.environ["MSMD_LILYPOND_PATCHES"] = str(stripped)
                _, bare_cpu, _ = timed(render.run, normalized, settings, bare_dir, force=True)
                os.environ["MSMD_LILYPOND_PATCHES"] = str(shipped)
                rendered, render_cpu, render_wall = timed(
                    render.run, normalized, settings, piece_dir, force=True
                )
                scored, score_cpu, score_wall = timed(
                    score.run, rendered, score.ScoreSettings(), piece_dir, force=True
                )
                with_sec.append(render_cpu)
                without_sec.append(bare_cpu)
                score_sec.append(score_cpu)
                wall_sec.append(render_wall + score_wall)
                py_sec.append(measure_python_seconds(rendered, scored))
        except Exception as exc:  # noqa: BLE001
            print(f"skip {entry.piece_id}: {exc.__class__.__name__}: {str(exc)[:80]}")
            continue
        finally:
            os.environ.pop("MSMD_LILYPOND_PATCHES", None)
        extra = statistics.median(with_sec) - statistics.median(without_sec)
        python = statistics.median(py_sec)
        base = statistics.median(with_sec) + statistics.median(score_sec)
        lily_extra.append(extra)
        python_sec.append(python)
        baseline.append(base)
        shares.append((extra + python) / base)
        walls.append(statistics.median(wall_sec))
        print(
            f"{entry.piece_id}: LilyPond {extra:+.3f} s, Python {python:.3f} s, "
            f"render + score {base:.2f} s CPU ({walls[-1]:.2f} s wall)"
        )
    shutil.rmtree(stripped, ignore_errors=True)
    if not baseline:
        raise SystemExit("no piece built")
    n = len(baseline)
    print(f"pieces: {n} (seed {args.seed}, {args.repeats} repeats each, medians per piece)")
    print(f"median extra LilyPond CPU seconds per piece: {statistics.median(lily_extra):.3f}")
    print(f"median Python CPU seconds of the measures: {statistics.median(python_sec):.3f}")
    total = [a + b for a, b in zip(lily_extra, python_sec, strict=True)]
    print(f"median extra CPU seconds per piece: {statistics.median(total):.3f}")
    print(f"median render + score CPU seconds per piece: {statistics.median(baseline):.2f}")
    print(f"median render + score wall seconds per piece: {statistics.median(walls):.2f}")
    print(f"median share of render + score: {100 * statistics.median(shares):.1f} %")


if __name__ == "__main__":
    main()
