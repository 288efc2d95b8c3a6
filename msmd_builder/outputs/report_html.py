"""An HTML page with plots for a build report: what the dataset holds and what went wrong.

:func:`write_report_html` reads the JSON report that
:func:`msmd_builder.pipeline.report.write_report` wrote (``{"summary": {...},
"pieces": [...]}``) and writes into ``out_dir``::

    report.html             the page (inline CSS, no JavaScript)
    report-plots/<name>.png one PNG per plot (matplotlib, Agg), referenced relatively

The page shows the sections of
:func:`msmd_builder.pipeline.report.sections.report_sections`, the same ones
``report.md`` shows, rendered with the ``report.html`` template, and adds
plots to some of them: pieces per composer, pages and noteheads per piece,
alignment completeness, failure classes, tempo ratios and durations of the
performances, seconds per stage.  A plot is left out when it has nothing to
draw; its section then says why.  The output depends only on the report, so
the same report gives the same files.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import atomic_path, atomic_write_text, read_json
from msmd_builder.outputs.pages import render_page
from msmd_builder.pipeline.report.facts import (
    aligned_share,
    alignment_of,
    composer_counts,
    failure_counts,
    performances_of,
    stage_seconds,
)
from msmd_builder.pipeline.report.sections import report_sections

__all__ = ["PLOT_DIR", "Figure", "write_report_html"]

#: Folder of the plots, beside ``report.html``.
PLOT_DIR = "report-plots"

_STATUS_COLOURS = {"ok": "#2a9d55", "degraded": "#e0a030", "failed": "#d03030"}

#: Draws a plot into a matplotlib Figure.
Draw = Callable[[Any], None]


@dataclass(frozen=True)
class Figure:
    """A plot written beside the page: its relative ``src`` and its ``alt`` text."""

    src: str
    alt: str


def write_report_html(
    report_json_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> Path:
    """Write ``report.html`` and its plots for one JSON build report.

    Parameters
    ----------
    report_json_path : path-like
        A report written by :func:`msmd_builder.pipeline.report.write_report`.
    out_dir : path-like
        Where ``report.html`` and ``report-plots/`` go (created if needed).

    Returns
    -------
    Path
        ``<out_dir>/report.html``.
    """
    source = Path(report_json_path)
    document = read_json(source)
    summary: dict[str, Any] = document.get("summary") or {}
    pieces: list[dict[str, Any]] = list(document.get("pieces") or [])
    out = Path(out_dir)
    plot_dir = out / PLOT_DIR
    plot_dir.mkdir(parents=True, exist_ok=True)

    # Section id -> its plots: (file name, title, drawing or None when there is nothing).
    plots: dict[str, list[tuple[str, str, Draw | None]]] = {
        "alignment": [
            ("pages-noteheads", "Pages and noteheads per piece", _plot_sizes(pieces)),
            ("alignment", "Alignment completeness", _plot_alignment(pieces)),
        ],
        "composers": [("composers", "Pieces per composer", _plot_composers(pieces))],
        "performances": [("performances", "Performances", _plot_performances(pieces))],
        "stage-seconds": [
            ("stage-seconds", "Seconds per stage", _plot_stages(summary, pieces)),
        ],
        "failures": [("failures", "Failures", _plot_failures(summary, pieces))],
    }
    figures = {
        section: [
            figure
            for name, title, draw in entries
            if (figure := _figure(plot_dir, name, title, draw)) is not None
        ]
        for section, entries in plots.items()
    }
    page = render_page(
        "report.html",
        title="msmd-builder build report",
        source=source.name,
        sections=report_sections(document),
        figures=figures,
    )
    path = out / "report.html"
    atomic_write_text(path, page)
    return path


def _figure(plot_dir: Path, name: str, title: str, draw: Draw | None) -> Figure | None:
    """Save one plot as ``<plot_dir>/<name>.png``; without a drawing remove a stale one."""
    target = plot_dir / f"{name}.png"
    if draw is None:
        target.unlink(missing_ok=True)
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MatplotlibFigure

    figure = MatplotlibFigure(figsize=(10, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    return Figure(f"{PLOT_DIR}/{name}.png", title)


# --------------------------------------------------------------------------------------
# Plots: each returns a drawing, or None when the report has nothing to draw
# --------------------------------------------------------------------------------------


def _plot_composers(pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    if not pieces:
        return None
    ranked = composer_counts(pieces)
    labels = [name for name, _ in ranked]
    counts = [count for _, count in ranked]

    def draw(figure: Any) -> None:
        figure.set_figheight(max(2.5, 0.28 * len(labels) + 1.0))
        ax = figure.subplots()
        y = list(range(len(labels)))[::-1]
        left = [0] * len(labels)
        for status, colour in _STATUS_COLOURS.items():
            values = [c.get(status, 0) for c in counts]
            if any(values):
                ax.barh(y, values, left=left, color=colour, label=status)
                left = [a + b for a, b in zip(left, values, strict=True)]
        for yi, total in zip(y, left, strict=True):
            ax.text(total, yi, f" {total}", va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlabel("pieces")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.legend(loc="lower right", fontsize=8)

    return draw


def _plot_sizes(pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    stats = [alignment_of(p) for p in pieces]
    pages = [s["pages"] for s in stats if isinstance(s.get("pages"), int)]
    heads = [s["noteheads"] for s in stats if isinstance(s.get("noteheads"), int)]
    if not pages and not heads:
        return None

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2)
        if pages:
            top = max(pages)
            left.hist(pages, bins=[b - 0.5 for b in range(1, top + 2)], color="#4a78b0")
            left.set_xlabel(f"pages per piece (median {statistics.median(pages):g})")
            left.set_ylabel("pieces")
            left.set_xticks(range(1, top + 1, max(1, top // 10)))
            left.yaxis.set_major_locator(_integer_ticks())
        if heads:
            right.hist(heads, bins=min(30, max(5, len(heads) // 3)), color="#4a78b0")
            right.set_xlabel(f"noteheads per piece (median {statistics.median(heads):g})")
            right.set_ylabel("pieces")
            right.yaxis.set_major_locator(_integer_ticks())

    return draw


def _plot_alignment(pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    shares = [share for p in pieces if (share := aligned_share(alignment_of(p))) is not None]
    if not shares:
        return None

    def draw(figure: Any) -> None:
        figure.set_figheight(3.0)
        ax = figure.subplots()
        low = min(90.0, min(shares))
        ax.hist(shares, bins=20, range=(low, 100.0), color="#2a9d55")
        median = statistics.median(shares)
        ax.set_xlabel(f"sounding visible noteheads aligned per piece, % (median {median:.2f})")
        ax.set_ylabel("pieces")
        ax.yaxis.set_major_locator(_integer_ticks())

    return draw


def _plot_failures(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    classes, stages = failure_counts(summary, pieces)
    if not classes:
        return None

    def draw(figure: Any) -> None:
        figure.set_figheight(max(1.8, 0.3 * max(len(classes), len(stages)) + 1.0))
        left, right = figure.subplots(1, 2, width_ratios=[2, 1])
        for ax, ranked, colour, label in (
            (left, classes, "#d03030", "failed pieces by class"),
            (right, stages, "#a04040", "failed pieces by stage"),
        ):
            ax.barh([k for k, _ in ranked][::-1], [v for _, v in ranked][::-1], color=colour)
            ax.set_xlabel(label)
            ax.xaxis.set_major_locator(_integer_ticks())

    return draw


def _plot_performances(pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    rows = performances_of(pieces)
    if not rows:
        return None
    ratios = Counter(round(float(r["tempo_ratio"]), 3) for r in rows if "tempo_ratio" in r)
    durations = [float(r["duration_sec"]) for r in rows if r.get("duration_sec") is not None]
    fonts = Counter(str(r["soundfont"]) for r in rows if r.get("soundfont"))

    def draw(figure: Any) -> None:
        first, second, third = figure.subplots(1, 3, width_ratios=[1, 1.2, 1.2])
        keys = sorted(ratios)
        first.bar([f"{k:g}" for k in keys], [ratios[k] for k in keys], color="#7a5cb0")
        first.set_xlabel("tempo ratio")
        first.set_ylabel("performances")
        first.yaxis.set_major_locator(_integer_ticks())
        if durations:
            second.hist(durations, bins=min(30, max(5, len(durations) // 3)), color="#7a5cb0")
            second.set_xlabel(f"duration, s (total {sum(durations) / 3600:.2f} h)")
            second.yaxis.set_major_locator(_integer_ticks())
        names = sorted(fonts, key=lambda k: (-fonts[k], k))
        third.barh(names[::-1], [fonts[k] for k in names][::-1], color="#7a5cb0")
        third.set_xlabel("performances per soundfont")
        third.xaxis.set_major_locator(_integer_ticks())
        third.tick_params(axis="y", labelsize=7)

    return draw


def _plot_stages(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Draw | None:
    timings = stage_seconds(summary, pieces)
    if not timings:
        return None
    stages = [stage for stage, _, _ in timings]
    perform = dict((summary.get("performance_totals") or {}).get("seconds") or {})

    def draw(figure: Any) -> None:
        axes = figure.subplots(1, 3 if perform else 2)
        panels = [
            (stages, [total for _, total, _ in timings], "seconds, all pieces", "total per stage"),
            (stages, [median for _, _, median in timings], "seconds per piece", "median per stage"),
        ]
        if perform:
            steps = list(perform)
            panels.append(
                (steps, [float(perform[s]) for s in steps], "seconds, all pieces", "perform stage")
            )
        for ax, (names, values, ylabel, title) in zip(axes, panels, strict=True):
            bars = ax.bar(names, values, color="#4a78b0")
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
            ax.tick_params(axis="x", labelsize=8, labelrotation=30)

    return draw


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)
