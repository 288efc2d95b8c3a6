"""The renderer-neutral model of a build report: sections of facts and tables.

:func:`msmd_builder.pipeline.report.sections.report_sections` builds these
from a report's JSON document; :mod:`~msmd_builder.pipeline.report.markdown`
and :mod:`msmd_builder.outputs.report_html` render them, so the Markdown and
the HTML report say the same things.  Renderers know nothing about builds:
everything they need to show a value is in the model (how a column aligns,
which cells compare ours with a reference, which rows are totals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Value", "Compared", "Cell", "Column", "Row", "Table", "Fact", "Section", "format_value"]

#: One figure or word in a table; ``None`` is shown as a dash.
Value: TypeAlias = str | int | float | None


@dataclass(frozen=True)
class Compared:
    """Our figure beside a reference's figure for the same thing (MSMD's Table 1)."""

    ours: Value
    reference: Value


#: A table cell: a plain value, or ours beside the reference's.
Cell: TypeAlias = Value | Compared


@dataclass(frozen=True)
class Column:
    """A table column.

    ``kind`` tells renderers how to show it without knowing the report:
    ``"number"`` columns are right-aligned, ``"status"`` cells hold a piece
    status (coloured in HTML), ``"message"`` cells hold long log text.
    ``compared`` columns hold :class:`Compared` cells.
    """

    label: str
    kind: Literal["text", "number", "status", "message"] = "text"
    compared: bool = False


@dataclass(frozen=True)
class Row:
    """A table row; ``total`` marks a row that sums the rows above it."""

    cells: tuple[Cell, ...]
    total: bool = False


@dataclass(frozen=True)
class Table:
    """A table: columns and rows.

    Attributes
    ----------
    columns : tuple of Column
    rows : tuple of Row
    name : str
        Names the kind of table across reports, for styling and for readers of
        the page (``"t1"``: MSMD's Table 1); empty for an ordinary table.
    reference : str
        Whose figures the :class:`Compared` cells hold beside ours (``"MSMD"``).
    grouped : bool
        The first column names groups of consecutive rows (a split and its
        parts); renderers show each name once, on the group's first row.
    """

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    name: str = ""
    reference: str = ""
    grouped: bool = False

    def group_spans(self) -> tuple[int, ...]:
        """Rows each row's first cell covers: the group's size on its first row, else 0.

        Without ``grouped`` every row covers itself (1).
        """
        if not self.grouped:
            return (1,) * len(self.rows)
        spans = [0] * len(self.rows)
        start = 0
        for i in range(1, len(self.rows) + 1):
            if i == len(self.rows) or self.rows[i].cells[0] != self.rows[start].cells[0]:
                spans[start] = i - start
                start = i
        return tuple(spans)


@dataclass(frozen=True)
class Fact:
    """One labelled fact, already worded (``"wall time"``: ``"12.3 s with 2 worker(s)"``)."""

    label: str
    value: str


@dataclass(frozen=True)
class Section:
    """One section of the report, in the order it is shown.

    Attributes
    ----------
    id : str
        Anchor of the section (HTML ``id``), stable across reports.
    title : str
    prose : tuple of str
        Paragraphs that explain the section.
    facts : tuple of Fact
    tables : tuple of Table
    missing : str
        Why the section has nothing to show (empty when it has).
    collapsed : bool
        Long and rarely read: HTML folds it away.
    """

    id: str
    title: str
    prose: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    tables: tuple[Table, ...] = ()
    missing: str = ""
    collapsed: bool = False


def format_value(value: Value) -> str:
    """Word a cell value: thousands separators, three significant digits, a dash for None."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
