"""Readers of the tables our LilyPond hooks write beside each PDF (``lilypond_patches/``).

One LilyPond run of a piece writes, per PDF (book) ``<stem>``:

=================================  ======================================================
``<stem>.msmd-noteheads.tsv``      one row per notehead (:data:`NOTEHEAD_COLUMNS`)
``<stem>.msmd-systems.tsv``        one row per system, all its staves (:data:`SYSTEM_COLUMNS`)
``<stem>.msmd-measures.tsv``       one row per measure box (:data:`MEASURE_COLUMNS`)
``<stem>.msmd-barlines.tsv``       every bar line and start of a repeat alternative,
                                   with its glyph (:data:`BARLINE_COLUMNS`)
=================================  ======================================================

and, once per file, ``<stem>.msmd-performed.tsv`` (every note event the MIDI
plays, in playing order; :data:`PERFORMED_COLUMNS`), ``<stem>.msmd-marks.tsv``
(texts, scripts and segno/coda signs where jumps are written; :data:`MARK_COLUMNS`)
and ``<stem>.msmd-repeats.tsv`` (the volta repeats of every score and where
LilyPond's iteration started and returned to them; :data:`REPEAT_COLUMNS`).

Every table starts with a format line ``#msmd-builder/<table>`` TAB
:data:`TABLES_VERSION`, then its header row.  The column names and the version
are written in Scheme (``msmd-geometry.ily``) and read here by name; these
constants are the one Python copy, checked against every file read and pinned
against the hooks' source by a test.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.core.tables import NOTEHEAD_DTYPE, SYSTEM_DTYPE

__all__ = [
    "TABLES_VERSION",
    "NOTEHEAD_COLUMNS",
    "SYSTEM_COLUMNS",
    "PERFORMED_COLUMNS",
    "MARK_COLUMNS",
    "MEASURE_COLUMNS",
    "BARLINE_COLUMNS",
    "REPEAT_COLUMNS",
    "TABLE_COLUMNS",
    "noteheads_file",
    "systems_file",
    "measures_file",
    "parse_source",
    "read_table",
    "read_noteheads_tsv",
    "read_systems_tsv",
    "LoggedEvent",
    "read_performed_log",
    "Mark",
    "read_marks",
    "LoggedMeasure",
    "read_measures_log",
    "BarLine",
    "read_barlines",
    "RepeatRow",
    "read_repeats",
]

#: Version of the hook tables' layout (``msmd-tables-version`` in ``msmd-geometry.ily``).
TABLES_VERSION = 4

#: Columns of ``*.msmd-noteheads.tsv``.
NOTEHEAD_COLUMNS: tuple[str, ...] = (
    "score",
    "event_id",
    "page",
    "system",
    "staff",
    "x0_pt",
    "y0_pt",
    "x1_pt",
    "y1_pt",
    "pitch",
    "moment_main",
    "moment_grace",
    "duration_whole",
    "tied",
    "visible",
    "source",
)
#: Columns of ``*.msmd-systems.tsv``.
SYSTEM_COLUMNS: tuple[str, ...] = (
    "system",
    "page",
    "staves",
    "x0_pt",
    "y0_pt",
    "x1_pt",
    "y1_pt",
    "staff_y_pt",
)
#: Columns of ``*.msmd-performed.tsv``.
PERFORMED_COLUMNS: tuple[str, ...] = (
    "score",
    "event_id",
    "voice",
    "moment_main",
    "moment_grace",
    "pitch",
    "duration_whole",
    "measured_repeat",
    "source",
)
#: Columns of ``*.msmd-marks.tsv``.
MARK_COLUMNS: tuple[str, ...] = ("score", "moment_main", "grob", "text", "end_main")
#: Columns of ``*.msmd-measures.tsv`` (one row per box: a measure broken by a
#: line or page break has one row per system, ``part`` 0, 1, ...).
MEASURE_COLUMNS: tuple[str, ...] = (
    "score",
    "measure",
    "part",
    "bar_number",
    "moment_main",
    "length_whole",
    "measure_length",
    "measure_position",
    "alternative",
    "cadenza",
    "multi_measure_rest",
    "page",
    "system",
    "x0_pt",
    "y0_pt",
    "x1_pt",
    "y1_pt",
)
#: Columns of ``*.msmd-barlines.tsv``.
BARLINE_COLUMNS: tuple[str, ...] = ("score", "moment_main", "glyph", "alternative")

#: Columns of ``*.msmd-repeats.tsv``.
REPEAT_COLUMNS: tuple[str, ...] = (
    "score",
    "kind",
    "start_main",
    "end_main",
    "count",
    "alternatives",
    "source",
)

#: Table name (as in the file suffix and format line) -> its columns.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "noteheads": NOTEHEAD_COLUMNS,
    "systems": SYSTEM_COLUMNS,
    "performed": PERFORMED_COLUMNS,
    "marks": MARK_COLUMNS,
    "measures": MEASURE_COLUMNS,
    "barlines": BARLINE_COLUMNS,
    "repeats": REPEAT_COLUMNS,
}

_SIGN = re.compile(r"\[(segno|coda)\]")
_GLYPH_NAME = re.compile(r"\bscripts\.\w+")


def noteheads_file(render_dir: str | Path, pdf_file: str) -> Path:
    """Return the noteheads table written beside ``pdf_file``."""
    return Path(render_dir) / f"{Path(pdf_file).stem}.msmd-noteheads.tsv"


def systems_file(render_dir: str | Path, pdf_file: str) -> Path:
    """Return the systems table written beside ``pdf_file``."""
    return Path(render_dir) / f"{Path(pdf_file).stem}.msmd-systems.tsv"


def measures_file(render_dir: str | Path, pdf_file: str) -> Path:
    """Return the measures table written beside ``pdf_file``."""
    return Path(render_dir) / f"{Path(pdf_file).stem}.msmd-measures.tsv"


def read_table(path: str | Path, table: str) -> list[dict[str, str]]:
    """Read one hook table, checking its format line and header row.

    Parameters
    ----------
    path : path-like
        The ``.tsv`` file.
    table : {'noteheads', 'systems', 'performed', 'marks', 'measures', 'barlines', 'repeats'}
        Which table it is.

    Returns
    -------
    list of dict
        One dict per row, column name -> text.

    Raises
    ------
    ToolNotFoundError
        If the file was written by hooks of another layout: the hooks and this
        package do not belong together.
    """
    columns = TABLE_COLUMNS[table]
    expected = f"#msmd-builder/{table}\t{TABLES_VERSION}"
    with open(path, encoding="utf-8", newline="") as handle:
        first = handle.readline().rstrip("\r\n")
        if first != expected:
            raise ToolNotFoundError(
                f"{Path(path).name} starts with {first[:60]!r}, not {expected!r}: the LilyPond "
                "hooks that wrote it do not match this msmd-builder; reinstall it"
            )
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = list(reader)
        if tuple(reader.fieldnames or ()) != columns:
            raise ToolNotFoundError(
                f"{Path(path).name} has columns {reader.fieldnames}, expected {list(columns)}: "
                "the LilyPond hooks do not match this msmd-builder; reinstall it"
            )
    return rows


def parse_source(location: str) -> tuple[str, int, int]:
    """Split our ``file:line:char`` source locations into its parts (``("", -1, -1)`` if empty)."""
    if not location:
        return "", -1, -1
    path, line, column = location.rsplit(":", 2)
    return path, int(line), int(column)


def _fraction(text: str) -> float:
    return float(Fraction(text))


def read_noteheads_tsv(path: str | Path, *, book: int = 0) -> np.ndarray:
    """Read one ``*.msmd-noteheads.tsv`` into a :data:`~msmd_builder.core.tables.NOTEHEAD_DTYPE` array.

    ``notehead_id`` is left as the row index within this file; callers
    concatenating several books renumber it.  Pixel boxes are NaN.
    """  # noqa: E501
    rows = read_table(path, "noteheads")
    table = np.zeros(len(rows), dtype=NOTEHEAD_DTYPE)
    for i, row in enumerate(rows):
        _, line, column = parse_source(row["source"])
        grace = _fraction(row["moment_grace"])
        table[i] = (
            i,
            int(row["event_id"]),
            int(row["score"]),
            book,
            int(row["page"]) - 1 if int(row["page"]) > 0 else -1,
            int(row["system"]),
            int(row["staff"]),
            float(row["x0_pt"]),
            float(row["y0_pt"]),
            float(row["x1_pt"]),
            float(row["y1_pt"]),
            int(row["pitch"]),
            _fraction(row["moment_main"]),
            grace,
            _fraction(row["duration_whole"]),
            row["tied"] == "1",
            grace != 0,
            row["visible"] == "1",
            line,
            column,
            *(np.nan,) * 4,
        )
    return table


def read_systems_tsv(path: str | Path, *, book: int = 0) -> np.ndarray:
    """Read one ``*.msmd-systems.tsv`` into a :data:`~msmd_builder.core.tables.SYSTEM_DTYPE` array."""  # noqa: E501
    rows = read_table(path, "systems")
    table = np.zeros(len(rows), dtype=SYSTEM_DTYPE)
    for i, row in enumerate(rows):
        table[i] = (
            int(row["system"]),
            book,
            int(row["page"]) - 1,
            int(row["staves"]),
            float(row["x0_pt"]),
            float(row["y0_pt"]),
            float(row["x1_pt"]),
            float(row["y1_pt"]),
            *(np.nan,) * 4,
        )
    return table


@dataclass(frozen=True)
class LoggedEvent:
    """One note event played by the MIDI score, in playing order."""

    order: int  # position in the log
    score: int
    event_id: int
    moment_main: Fraction
    moment_grace: Fraction
    pitch: int
    duration_whole: Fraction
    measured_repeat: bool = False  # inside a tremolo or percent repeat
    voice: int = -1  # the MIDI score's Voice context that played it, numbered from 0


def read_performed_log(path: str | Path, *, score: int | None = None) -> list[LoggedEvent]:
    """Read ``*.msmd-performed.tsv``, optionally only the rows of one score."""
    events = []
    for order, row in enumerate(read_table(path, "performed")):
        if score is not None and int(row["score"]) != score:
            continue
        events.append(
            LoggedEvent(
                order=order,
                score=int(row["score"]),
                event_id=int(row["event_id"]),
                moment_main=Fraction(row["moment_main"]),
                moment_grace=Fraction(row["moment_grace"]),
                pitch=int(row["pitch"]),
                duration_whole=Fraction(row["duration_whole"]),
                measured_repeat=row["measured_repeat"] == "1",
                voice=int(row["voice"]),
            )
        )
    return events


@dataclass(frozen=True)
class Mark:
    """A text mark, text script or jump sign of the layout (where jumps are written).

    Attributes
    ----------
    score : int
        Layout score index.
    moment_main : Fraction
        Printed moment, whole notes.
    grob : str
        ``TextScript`` or ``Script`` (on a note, rest or skip), or a mark at a
        bar line (``RehearsalMark``, ``TextMark``).
    text : str
        The markup as text; drawn segno and coda signs appear as ``[segno]``
        and ``[coda]``.
    end_main : Fraction or None
        Where the music carrying the mark ends (the longest note, rest or skip
        it is attached to; the mark's own moment at a bar line); None if the
        hooks could not tell.
    """

    score: int
    moment_main: Fraction
    grob: str
    text: str
    end_main: Fraction | None = None

    @property
    def words(self) -> str:
        """The text without sign tokens and glyph names."""
        return " ".join(_GLYPH_NAME.sub(" ", _SIGN.sub(" ", self.text)).split())

    @property
    def signs(self) -> frozenset[str]:
        """Jump signs drawn by the mark: ``"segno"``, ``"coda"``."""
        return frozenset(_SIGN.findall(self.text))


def read_marks(path: str | Path) -> list[Mark]:
    """Read ``*.msmd-marks.tsv``; a missing file means no marks."""
    path = Path(path)
    if not path.exists():
        return []
    return [
        Mark(
            int(r["score"]),
            Fraction(r["moment_main"]),
            r["grob"],
            r["text"],
            Fraction(r["end_main"]) if r["end_main"] else None,
        )
        for r in read_table(path, "marks")
    ]


@dataclass(frozen=True)
class LoggedMeasure:
    r"""One box of a measure as the hooks laid it out (a row of ``*.msmd-measures.tsv``).

    Attributes
    ----------
    score : int
        Layout score index.
    measure : int
        Index of the measure within its score, in time order.
    part : int
        0 for the measure's first box; 1, 2, ... for its continuations on
        the following systems when a line or page break falls inside it.
    bar_number : int
        LilyPond's ``currentBarNumber`` when the measure starts.
    moment_main : Fraction
        Where the measure starts, whole notes of the layout score.
    length_whole : Fraction
        Written length: up to the next measure's start or the end of the music.
    measure_length : Fraction
        The time signature's measure length (``measureLength``).
    measure_position : Fraction
        ``measurePosition`` at the start: negative after ``\partial``.
    alternative : int
        ``alternativeNumber`` (the repeat ending) at the start; 0 outside.
    cadenza : bool
        Timing was off (``\cadenzaOn``) during the measure.
    multi_measure_rest : bool
        A multi-measure rest starts in the measure.
    page : int
        1-based page of this box in its PDF; -1 when the measure was not laid out.
    system : int
        0-based system of this box in its PDF; -1 when not laid out.
    box_pt : tuple of float
        ``(x0, y0, x1, y1)`` in PDF points (NaN when not laid out).
    """

    score: int
    measure: int
    part: int
    bar_number: int
    moment_main: Fraction
    length_whole: Fraction
    measure_length: Fraction
    measure_position: Fraction
    alternative: int
    cadenza: bool
    multi_measure_rest: bool
    page: int
    system: int
    box_pt: tuple[float, float, float, float]


def read_measures_log(path: str | Path) -> list[LoggedMeasure]:
    """Read one ``*.msmd-measures.tsv`` (a missing file means no measures)."""
    path = Path(path)
    if not path.exists():
        return []
    return [
        LoggedMeasure(
            score=int(r["score"]),
            measure=int(r["measure"]),
            part=int(r["part"]),
            bar_number=int(r["bar_number"]),
            moment_main=Fraction(r["moment_main"]),
            length_whole=Fraction(r["length_whole"]),
            measure_length=Fraction(r["measure_length"]),
            measure_position=Fraction(r["measure_position"]),
            alternative=int(r["alternative"]),
            cadenza=r["cadenza"] == "1",
            multi_measure_rest=r["multi_measure_rest"] == "1",
            page=int(r["page"]),
            system=int(r["system"]),
            box_pt=(float(r["x0_pt"]), float(r["y0_pt"]), float(r["x1_pt"]), float(r["y1_pt"])),
        )
        for r in read_table(path, "measures")
    ]


@dataclass(frozen=True)
class BarLine:
    """A bar line of the layout, or the start of a repeat alternative without one.

    Attributes
    ----------
    score : int
        Layout score index.
    moment_main : Fraction
        Where it stands, whole notes of the layout score.
    glyph : str
        LilyPond's bar glyph (``"|"``, ``".|:"``, ``":|."``, ``":..:"``, ...);
        empty for the start of an alternative without a bar line.
    alternative : int
        ``alternativeNumber`` from this moment on (0 outside alternatives).
    """

    score: int
    moment_main: Fraction
    glyph: str
    alternative: int

    @property
    def starts_repeat(self) -> bool:
        """The glyph opens a repeated section (``.|:``, ``[|:``, ``:..:``, ...)."""
        return self.glyph.endswith(":") or "|:" in self.glyph

    @property
    def ends_repeat(self) -> bool:
        """The glyph closes a repeated section (``:|.``, ``:|]``, ``:..:``, ...)."""
        return self.glyph.startswith(":") or ":|" in self.glyph


def read_barlines(path: str | Path) -> list[BarLine]:
    """Read ``*.msmd-barlines.tsv``; a missing file means no bar lines."""
    path = Path(path)
    if not path.exists():
        return []
    return [
        BarLine(int(r["score"]), Fraction(r["moment_main"]), r["glyph"], int(r["alternative"]))
        for r in read_table(path, "barlines")
    ]


@dataclass(frozen=True)
class RepeatRow:
    r"""One row of the repeats table.

    Attributes
    ----------
    score : int
        Layout score index.
    kind : str
        ``"volta"``: a volta repeat as written, from the music;
        ``"volta-specced"``: one whose body has parts played in some volte only
        (``\volta``, ``\unfolded``, an inner ``\alternative``), which the
        row does not describe; ``"iterated-start"``: where the layout's
        iteration started a repeat; ``"iterated-return"``: where it would return
        to a repeat's body.
    start : Fraction
        The repeat's printed start (for ``"iterated-return"``: the start of the
        body it returns to), whole notes.
    end : Fraction or None
        The body's end (``"volta"``), or where the iteration returns
        (``"iterated-return"``).
    count : int
        How often the repeat is played (0 for the iterated rows).
    alternatives : tuple of (Fraction, tuple of int)
        Each alternative's printed end and the volte it is played in, in order;
        the first begins at the body's end, each next one where the previous ends.
    source : str
        ``file:line:char`` of the ``\repeat``.
    """

    score: int
    kind: str
    start: Fraction
    end: Fraction | None
    count: int
    alternatives: tuple[tuple[Fraction, tuple[int, ...]], ...]
    source: str


def read_repeats(path: str | Path) -> list[RepeatRow]:
    """Read ``*.msmd-repeats.tsv``; a missing file means no repeats."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for r in read_table(path, "repeats"):
        alternatives = tuple(
            (Fraction(end), tuple(int(v) for v in volte.split(",") if v))
            for end, volte in (part.split("=") for part in r["alternatives"].split(";") if part)
        )
        rows.append(
            RepeatRow(
                int(r["score"]),
                r["kind"],
                Fraction(r["start_main"]),
                Fraction(r["end_main"]) if r["end_main"] else None,
                int(r["count"]) if r["count"] else 0,
                alternatives,
                r["source"],
            )
        )
    return rows
