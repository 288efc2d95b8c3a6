"""The Markdown form of a build report (``report.md``)."""

from __future__ import annotations

from collections.abc import Sequence

from msmd_builder.pipeline.report.model import Cell, Compared, Section, Table, format_value

__all__ = ["render_markdown"]


def render_markdown(sections: Sequence[Section], title: str) -> str:
    """Render a report's sections as Markdown: ``# title``, then one ``##`` heading each.

    Prose is paragraphs, a missing section's reason is in italics, facts are a
    bullet list and tables are pipe tables: numbers right-aligned, a group's
    name on its first row only, totals in bold, and a reference's figures in
    parentheses after ours (Markdown has no cells spanning columns).
    """
    lines = [f"# {title}"]
    for section in sections:
        lines += ["", f"## {section.title}"]
        lines += [block for paragraph in section.prose for block in ("", paragraph)]
        if section.missing:
            lines += ["", f"*{section.missing}*"]
        if section.facts:
            lines.append("")
            lines += [f"- {fact.label}: {_one_line(fact.value)}" for fact in section.facts]
        for table in section.tables:
            lines += ["", *_markdown_table(table)]
    return "\n".join(lines) + "\n"


def _markdown_table(table: Table) -> list[str]:
    align = {"number": "---:"}
    lines = [
        "| " + " | ".join(c.label for c in table.columns) + " |",
        "| " + " | ".join(align.get(c.kind, "---") for c in table.columns) + " |",
    ]
    for row, span in zip(table.rows, table.group_spans(), strict=True):
        cells = [_markdown_cell(cell) for cell in row.cells]
        if span == 0:
            cells[0] = ""
        if row.total:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if table.reference:
        lines += ["", f"In parentheses: {table.reference}'s figures."]
    return lines


def _markdown_cell(cell: Cell) -> str:
    if isinstance(cell, Compared):
        return f"{format_value(cell.ours)} ({format_value(cell.reference)})"
    # A backslash keeps "|" from ending the cell and "<" from opening an HTML tag
    # (LilyPond messages quote chords such as <c e g>).
    return _one_line(format_value(cell)).replace("|", "\\|").replace("<", "\\<")


def _one_line(text: str) -> str:
    return " ".join(text.split())
