"""The hook tables: the column names the Scheme writes are the ones Python reads."""

from __future__ import annotations

import re

import pytest

from msmd_builder.core.errors import ToolNotFoundError
from msmd_builder.lilypond.logs import TABLE_COLUMNS, TABLES_VERSION, read_table
from msmd_builder.lilypond.tools import patches_dir


def _scheme_tables() -> dict[str, tuple[str, ...]]:
    """Table name -> columns, as ``msmd-table-header`` is called in the hooks."""
    text = (patches_dir() / "msmd-geometry.ily").read_text(encoding="utf-8")
    calls = re.findall(r'\(msmd-table-header\s+[\w-]+\s+"(\w+)"\s+\'\(([^)]*)\)\)', text)
    return {name: tuple(re.findall(r'"([^"]+)"', columns)) for name, columns in calls}


def test_the_hooks_write_the_columns_and_version_python_reads():
    assert _scheme_tables() == TABLE_COLUMNS
    text = (patches_dir() / "msmd-geometry.ily").read_text(encoding="utf-8")
    assert re.search(r"\(define msmd-tables-version (\d+)\)", text).group(1) == str(TABLES_VERSION)


def test_a_table_of_another_layout_is_refused(tmp_path):
    columns = "\t".join(TABLE_COLUMNS["marks"])
    good = tmp_path / "x.msmd-marks.tsv"
    good.write_text(f"#msmd-builder/marks\t{TABLES_VERSION}\n{columns}\n0\t1/4\tScript\tD.C.\t\n")
    assert read_table(good, "marks") == [
        {"score": "0", "moment_main": "1/4", "grob": "Script", "text": "D.C.", "end_main": ""}
    ]
    old = tmp_path / "old.msmd-marks.tsv"
    old.write_text(f"{columns}\n0\t1/4\tScript\tD.C.\t\n")  # no format line
    with pytest.raises(ToolNotFoundError, match="do not match this msmd-builder"):
        read_table(old, "marks")
    renamed = tmp_path / "renamed.msmd-marks.tsv"
    renamed.write_text(f"#msmd-builder/marks\t{TABLES_VERSION}\n{columns.replace('grob', 'g')}\n")
    with pytest.raises(ToolNotFoundError, match="has columns"):
        read_table(renamed, "marks")
