"""An HTML page with plots for a build report: what the dataset holds and what went wrong.

:func:`write_report_html` reads the JSON report that
:func:`msmd_builder.pipeline.write_report` wrote (``{"summary": {...},
"pieces": [...]}``) and writes into ``out_dir``::

    report.html             the page (inline CSS, no JavaScript)
    report-plots/<name>.png one PNG per plot (matplotlib, Agg), referenced relatively

The page has the build summary, the Table-1-style statistics per split and
part (with MSMD's numbers beside ours when the report carries them), plots of
pieces per composer, pages and noteheads per piece, alignment completeness,
failure classes, tempo ratios and durations of the performances, seconds per
stage, and tables of the failed pieces and of every piece.

Every key the report may lack (``table1``, ``msmd_table1``, a piece's
``composer``, ``title``, ``alignment`` or ``performances``) is optional: the
page says what is missing instead of failing.  The output depends only on the
report, so the same report gives the same files.
"""

from __future__ import annotations

import html
import os
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from msmd_builder.core.cache import atomic_path, atomic_write_text, read_json

__all__ = ["TOP_COMPOSERS", "PLOT_DIR", "write_report_html", "composer_of"]

#: Composers shown by name in the pieces-per-composer plot; the rest are "other".
TOP_COMPOSERS = 20
#: Folder of the plots, beside ``report.html``.
PLOT_DIR = "report-plots"

_STATUS_COLOURS = {"ok": "#2a9d55", "degraded": "#e0a030", "failed": "#d03030"}
_TABLE1_COLUMNS = ("pieces", "pages", "noteheads", "events", "aligned_pairs")


def composer_of(piece: Mapping[str, Any]) -> str:
    """Return a piece's composer: its ``details.composer``, else the id's first part."""
    composer = (piece.get("details") or {}).get("composer")
    if composer:
        return str(composer)
    return str(piece.get("piece_id", "")).split("__")[0] or "unknown"


def write_report_html(
    report_json_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> Path:
    """Write ``report.html`` and its plots for one JSON build report.

    Parameters
    ----------
    report_json_path : path-like
        A report written by :func:`msmd_builder.pipeline.write_report`.
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

    sections = [
        _summary_section(summary, pieces),
        _table1_section(summary),
        _figure(plot_dir, "composers", "Pieces per composer", _plot_composers(pieces)),
        _figure(plot_dir, "pages-noteheads", "Pages and noteheads per piece", _plot_sizes(pieces)),
        _figure(plot_dir, "alignment", "Alignment completeness", _plot_alignment(pieces)),
        _figure(plot_dir, "failures", "Failures", _plot_failures(summary, pieces)),
        _figure(plot_dir, "performances", "Performances", _plot_performances(pieces)),
        _figure(plot_dir, "stage-seconds", "Seconds per stage", _plot_stages(summary, pieces)),
        _failed_section(pieces),
        _pieces_section(pieces),
    ]
    page = _TEMPLATE.format(
        title="msmd-builder build report",
        source=html.escape(source.name),
        body="\n".join(sections),
    )
    path = out / "report.html"
    atomic_write_text(path, page)
    return path


# --------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------


def _alignment(piece: Mapping[str, Any]) -> dict[str, Any]:
    stats = (piece.get("details") or {}).get("alignment")
    return stats if isinstance(stats, dict) and piece.get("status") != "failed" else {}


def _performances(pieces: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for piece in pieces:
        if piece.get("status") == "failed":
            continue
        for row in (piece.get("details") or {}).get("performances") or []:
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _summary_section(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> str:
    counts = summary.get("status_counts") or Counter(p.get("status", "?") for p in pieces)
    n = int(summary.get("pieces", len(pieces)))
    rows = [
        ("pieces", _number(n)),
        ("status", ", ".join(f"{k} {_number(v)}" for k, v in sorted(counts.items()))),
        (
            "wall time",
            f"{_number(summary.get('wall_seconds'))} s with {_number(summary.get('workers'))} "
            f"worker(s) on {_number(summary.get('cpu_count'))} CPU(s)",
        ),
        (
            "LilyPond",
            f"{_number(summary.get('lilypond_version'))}: median "
            f"{_number(summary.get('lilypond_seconds_median'))} s, total "
            f"{_number(summary.get('lilypond_seconds_total'))} s",
        ),
    ]
    totals = summary.get("alignment_totals") or {}
    if totals:
        sounding = totals.get("sounding_visible_noteheads", 0) or 1
        midi = totals.get("midi_notes", 0) or 1
        rows += [
            (
                "aligned data",
                f"{_number(totals.get('pieces', 0))} pieces, {_number(totals.get('pages', 0))} "
                f"pages, {_number(totals.get('noteheads', 0))} noteheads, "
                f"{_number(totals.get('performed_notes', 0))} performed notes, "
                f"{_number(totals.get('aligned_performed_notes', 0))} aligned pairs",
            ),
            (
                "sounding visible noteheads aligned",
                f"{100 * totals.get('aligned_sounding_visible_noteheads', 0) / sounding:.2f} %",
            ),
            (
                "MIDI notes accounted for",
                f"{100 * totals.get('matched_midi_notes', 0) / midi:.2f} %",
            ),
            ("pitch mismatches", _number(totals.get("pitch_mismatches", 0))),
        ]
    perf = summary.get("performance_totals") or {}
    if perf:
        rows.append(
            (
                "performances",
                f"{_number(perf.get('performances'))} of {_number(perf.get('pieces'))} pieces, "
                f"{_number(perf.get('audio_hours'))} hours of audio",
            )
        )
        if perf.get("onset_checks"):
            rows.append(
                (
                    "onset checks",
                    f"{_number(perf.get('onset_checks'))}, median fraction within one frame "
                    f"{_number(perf.get('onset_fraction_median'))}, minimum "
                    f"{_number(perf.get('onset_fraction_min'))}, "
                    f"{_number(perf.get('onset_checks_below_98'))} below 0.98",
                )
            )
    body = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<section id="summary"><h2>Summary</h2><table class="facts">{body}</table></section>'


def _table1_section(summary: Mapping[str, Any]) -> str:
    ours = summary.get("table1") or {}
    msmd = summary.get("msmd_table1") or {}
    if not ours and not msmd:
        return (
            '<section id="table1"><h2>Dataset statistics (Table 1)</h2>'
            '<p class="missing">This report has no split statistics (no <code>table1</code>): '
            "they are computed when splits are made.</p></section>"
        )
    extra = sorted(
        {
            key
            for parts in ours.values()
            for row in parts.values()
            for key in row
            if key not in _TABLE1_COLUMNS
        }
    )
    columns = [*_TABLE1_COLUMNS, *extra]
    with_msmd = bool(msmd)
    head = "".join(
        f'<th colspan="2">{html.escape(c.replace("_", " "))}</th>'
        if with_msmd and c in _TABLE1_COLUMNS
        else f'<th rowspan="{2 if with_msmd else 1}">{html.escape(c.replace("_", " "))}</th>'
        for c in columns
    )
    sub = ""
    if with_msmd:
        sub = "<tr>" + "<th>ours</th><th>MSMD</th>" * len(_TABLE1_COLUMNS) + "</tr>"
    span = 2 if with_msmd else 1
    lines = [
        '<section id="table1"><h2>Dataset statistics (Table 1)</h2>',
        "<p>Pieces, pages, noteheads, performed events and aligned notehead–event pairs per "
        "split and part"
        + (", with the numbers of MSMD (Dorfer et al. 2018, Table 1) beside ours." if msmd else ".")
        + "</p>",
        '<table class="t1">',
        f'<tr><th rowspan="{span}">split</th><th rowspan="{span}">part</th>{head}</tr>{sub}',
    ]
    for split in [*ours, *(s for s in msmd if s not in ours)]:
        parts = dict(ours.get(split) or {})
        ref_parts = dict(msmd.get(split) or {})
        names = sorted({*parts, *ref_parts}, key=_part_order)
        if len(names) > 1 and "total" not in names:
            names.append("total")
            parts["total"] = _total(parts.values()) if parts else None
            ref_parts["total"] = _total(ref_parts.values()) if ref_parts else None
        for i, part in enumerate(names):
            row, ref = parts.get(part), ref_parts.get(part)
            cells = []
            for column in columns:
                cells.append(f"<td>{_number(row.get(column)) if row else '–'}</td>")
                if with_msmd and column in _TABLE1_COLUMNS:
                    value = _number(ref.get(column)) if ref else "–"
                    cells.append(f'<td class="ref">{value}</td>')
            split_cell = f'<th rowspan="{len(names)}">{html.escape(split)}</th>' if i == 0 else ""
            kind = ' class="total"' if part == "total" else ""
            lines.append(f"<tr{kind}>{split_cell}<td>{html.escape(part)}</td>{''.join(cells)}</tr>")
    lines.append("</table></section>")
    return "\n".join(lines)


def _part_order(part: str) -> tuple[int, str]:
    order = ("train", "valid", "test")
    return (order.index(part) if part in order else len(order), part)


def _total(rows: Any) -> dict[str, int]:
    """Sum the integer columns of a split's parts."""
    total: Counter[str] = Counter()
    for row in rows:
        total.update({k: v for k, v in row.items() if isinstance(v, int)})
    return dict(total)


def _failed_section(pieces: Sequence[Mapping[str, Any]]) -> str:
    failed = [p for p in pieces if p.get("status") == "failed"]
    if not failed:
        return '<section id="failed"><h2>Failed pieces</h2><p>No piece failed.</p></section>'
    rows = "\n".join(
        '<tr><td>{}</td><td>{}</td><td>{}</td><td class="msg">{}</td></tr>'.format(
            html.escape(str(p.get("piece_id", ""))),
            html.escape(str(p.get("stage", ""))),
            html.escape(str(p.get("error_class", ""))),
            html.escape(str(p.get("message", ""))[:500]),
        )
        for p in sorted(failed, key=lambda p: (str(p.get("error_class")), str(p.get("piece_id"))))
    )
    return (
        f'<section id="failed"><h2>Failed pieces ({len(failed)})</h2>'
        '<table class="list"><tr><th>piece</th><th>stage</th><th>class</th><th>message</th></tr>'
        f"{rows}</table></section>"
    )


def _pieces_section(pieces: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for p in pieces:
        details = p.get("details") or {}
        stats = _alignment(p)
        sounding = stats.get("sounding_visible_noteheads") or 0
        aligned = (
            f"{100 * stats.get('aligned_sounding_visible_noteheads', 0) / sounding:.1f} %"
            if sounding
            else "–"
        )
        perfs = details.get("performances") or []
        status = str(p.get("status", ""))
        rows.append(
            f"<tr><td>{html.escape(str(p.get('piece_id', '')))}</td>"
            f"<td>{html.escape(composer_of(p))}</td>"
            f"<td>{html.escape(str(details.get('title') or ''))}</td>"
            f'<td class="{html.escape(status)}">{html.escape(status)}</td>'
            f"<td>{_number(stats.get('pages', '–'))}</td>"
            f"<td>{_number(stats.get('noteheads', '–'))}</td>"
            f"<td>{aligned}</td><td>{len(perfs)}</td>"
            f"<td>{_number(round(sum(float(v) for v in (p.get('seconds') or {}).values()), 2))}"
            "</td></tr>"
        )
    return (
        f'<section id="pieces"><h2>All pieces ({len(pieces)})</h2><details><summary>show the '
        'table</summary><table class="list"><tr><th>piece</th><th>composer</th><th>title</th>'
        "<th>status</th><th>pages</th><th>noteheads</th><th>aligned</th><th>performances</th>"
        f"<th>seconds</th></tr>{''.join(rows)}</table></details></section>"
    )


# --------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------

#: A plot: draws into a matplotlib Figure; or a string saying why there is nothing to plot.
Plot = Callable[[Any], None] | str


def _figure(plot_dir: Path, name: str, title: str, plot: Plot, *, width: float = 10) -> str:
    """Save one plot as ``<plot_dir>/<name>.png`` and return its HTML section."""
    anchor = f'<section id="{name}"><h2>{html.escape(title)}</h2>'
    target = plot_dir / f"{name}.png"
    if isinstance(plot, str):
        target.unlink(missing_ok=True)
        return f'{anchor}<p class="missing">{html.escape(plot)}</p></section>'
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    plot(figure)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    src = f"{PLOT_DIR}/{name}.png"
    return f'{anchor}<img src="{src}" alt="{html.escape(title)}"></section>'


def _plot_composers(pieces: Sequence[Mapping[str, Any]]) -> Plot:
    if not pieces:
        return "No pieces in this report."
    by_composer: dict[str, Counter[str]] = {}
    for piece in pieces:
        by_composer.setdefault(composer_of(piece), Counter())[str(piece.get("status"))] += 1
    ranked = sorted(by_composer, key=lambda c: (-sum(by_composer[c].values()), c))
    shown, rest = ranked[:TOP_COMPOSERS], ranked[TOP_COMPOSERS:]
    labels = list(shown)
    counts = [by_composer[c] for c in shown]
    if rest:
        other: Counter[str] = Counter()
        for c in rest:
            other.update(by_composer[c])
        labels.append(f"other ({len(rest)} composers)")
        counts.append(other)

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


def _plot_sizes(pieces: Sequence[Mapping[str, Any]]) -> Plot:
    stats = [_alignment(p) for p in pieces]
    pages = [s["pages"] for s in stats if isinstance(s.get("pages"), int)]
    heads = [s["noteheads"] for s in stats if isinstance(s.get("noteheads"), int)]
    if not pages and not heads:
        return "No piece reached the align stage, so there are no page or notehead counts."

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


def _plot_alignment(pieces: Sequence[Mapping[str, Any]]) -> Plot:
    shares = []
    for p in pieces:
        s = _alignment(p)
        if s.get("sounding_visible_noteheads"):
            shares.append(
                100
                * s.get("aligned_sounding_visible_noteheads", 0)
                / s["sounding_visible_noteheads"]
            )
    if not shares:
        return "No piece reached the align stage."

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


def _plot_failures(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Plot:
    failed = [p for p in pieces if p.get("status") == "failed"]
    classes = Counter(summary.get("failure_classes") or {}) or Counter(
        str(p.get("error_class")) for p in failed
    )
    if not classes:
        return "No piece failed."
    stages = Counter(str(p.get("stage")) for p in failed)

    def draw(figure: Any) -> None:
        figure.set_figheight(max(1.8, 0.3 * max(len(classes), len(stages)) + 1.0))
        left, right = figure.subplots(1, 2, width_ratios=[2, 1])
        ranked = sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))
        left.barh([k for k, _ in ranked][::-1], [v for _, v in ranked][::-1], color="#d03030")
        left.set_xlabel("failed pieces by class")
        left.xaxis.set_major_locator(_integer_ticks())
        ranked = sorted(stages.items(), key=lambda kv: (-kv[1], kv[0]))
        right.barh([k for k, _ in ranked][::-1], [v for _, v in ranked][::-1], color="#a04040")
        right.set_xlabel("failed pieces by stage")
        right.xaxis.set_major_locator(_integer_ticks())

    return draw


def _plot_performances(pieces: Sequence[Mapping[str, Any]]) -> Plot:
    rows = _performances(pieces)
    if not rows:
        return "This report has no performances (the build stopped before the perform stage)."
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


def _plot_stages(summary: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> Plot:
    per_stage: dict[str, list[float]] = {}
    for piece in pieces:
        for stage, sec in (piece.get("seconds") or {}).items():
            per_stage.setdefault(stage, []).append(float(sec))
    totals = dict(summary.get("stage_seconds_total") or {}) or {
        k: sum(v) for k, v in per_stage.items()
    }
    medians = dict(summary.get("stage_seconds_median") or {}) or {
        k: statistics.median(v) for k, v in per_stage.items()
    }
    if not totals:
        return "This report has no stage timings."
    order = {stage: i for i, stage in enumerate(_stage_order())}
    stages = sorted(totals, key=lambda s: (order.get(s, len(order)), s))

    perform = dict((summary.get("performance_totals") or {}).get("seconds") or {})

    def draw(figure: Any) -> None:
        axes = figure.subplots(1, 3 if perform else 2)
        panels = [
            (stages, [float(totals[s]) for s in stages], "seconds, all pieces", "total per stage"),
            (
                stages,
                [float(medians.get(s, 0.0)) for s in stages],
                "seconds per piece",
                "median per stage",
            ),
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


def _stage_order() -> tuple[str, ...]:
    from msmd_builder.stages import STAGE_NAMES

    return STAGE_NAMES


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
body {{ margin: 0 auto; max-width: 1100px; padding: 0 16px 32px;
  font: 14px/1.45 system-ui, sans-serif; color: #222; }}
h1 {{ margin: 16px 0 4px; font-size: 22px; }}
h2 {{ margin: 28px 0 8px; font-size: 17px; border-bottom: 1px solid #ddd; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 3px 8px; border: 1px solid #ddd; text-align: left; vertical-align: top; }}
table.facts th {{ background: #f4f4f4; font-weight: 600; }}
table.t1 td {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.t1 td.ref {{ color: #666; background: #f7f7f7; }}
table.t1 th {{ background: #f4f4f4; text-align: center; }}
table.t1 tr.total td {{ font-weight: 600; }}
table.list td.msg {{ font-family: ui-monospace, monospace; font-size: 12px; max-width: 520px;
  word-break: break-word; }}
td.ok {{ color: #2a9d55; }} td.degraded {{ color: #b07000; }} td.failed {{ color: #d03030; }}
p.missing {{ color: #777; font-style: italic; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>From <code>{source}</code>, written by msmd-builder.</p>
{body}
</body>
</html>
"""
