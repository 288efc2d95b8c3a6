"""The default dataset built once for every test of the whole build that reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from tests.conftest import EXAMPLES_ROOT


def dataset_arguments(work: Path, out: Path, *extra: str) -> list[str]:
    """``msmd-build`` arguments that build examples/ as every dataset test does (seed 3)."""
    return [
        "dataset",
        str(EXAMPLES_ROOT),
        "--work-dir",
        str(work),
        "--out",
        str(out),
        "--workers",
        "2",
        "--seed",
        "3",
        *extra,
    ]


def build(work: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, dataset_arguments(work, out, *extra))
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """``(root, report)``: examples/ built into ``root/work`` and ``root/out`` (seed 3).

    Session-wide, so the tests of ``test_dataset.py`` and
    ``test_dataset_recordings.py`` share one build (they copy what they change).
    """
    root = tmp_path_factory.mktemp("dataset")
    report = build(root / "work", root / "out")
    return root, report
