"""The HTML build report, from a real build's JSON report, loaded in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.outputs.report_html import PLOT_DIR, write_report_html
from msmd_builder.pipeline.report.facts import composer_of
from msmd_builder.stages.perform.plans import plan_performances
from msmd_builder.stages.perform.soundfonts import load_soundfonts
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.chromium import Chromium, chromium_or_skip

EXAMPLES = (
    "ExampleA/O3/ornament-rondino",
    "ExampleB/O7/chord-prelude",
    "ExampleC/O3/old-syntax-gavotte",
)
BROKEN = r"""\version "2.24.0"
\header { title = "Rests only" composer = "Nobody" mutopiainstrument = "Piano" }
\score { \new Staff { r1 r1 } \layout { } \midi { } }
"""

#: MSMD's "all" split (Dorfer et al. 2018, Table 1).
MSMD_ALL = {
    "train": {
        "pieces": 360,
        "pages": 970,
        "noteheads": 316038,
        "events": 310377,
        "aligned_pairs": 308761,
    },
    "valid": {"pieces": 19, "pages": 28, "noteheads": 6907, "events": 6583, "aligned_pairs": 6660},
    "test": {
        "pieces": 100,
        "pages": 131,
        "noteheads": 29851,
        "events": 29811,
        "aligned_pairs": 29321,
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three examples and a piece with nothing to align, built; returns (work, report path)."""
    root = tmp_path_factory.mktemp("corpus")
    for rel in EXAMPLES:
        shutil.copytree(EXAMPLES_ROOT / "ftp" / rel, root / "ftp" / rel)
    broken = root / "ftp" / "TestX" / "O1" / "broken"
    broken.mkdir(parents=True)
    (broken / "broken.ly").write_text(BROKEN, encoding="utf-8")
    work = tmp_path_factory.mktemp("work")
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(root), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    render = runner.invoke(main, ["corpus", "render", "--work-dir", str(work), "--workers", "2"])
    assert render.exit_code == 0, render.output
    return work, work / "reports" / "render.json"


def _enriched(work, report_path, out_path):
    """The report with the keys later stages add: table1, msmd_table1, performances."""
    document = json.loads(report_path.read_text(encoding="utf-8"))
    ok = [p for p in document["pieces"] if p["status"] != "failed"]
    specs = load_soundfonts()
    for piece in ok:
        with np.load(work / "pieces" / piece["piece_id"] / "align" / "alignment.npz") as data:
            end_sec = float(data["performed"]["offset_sec"].max())
        plans = plan_performances(piece["piece_id"], role="train", soundfonts=specs, seed=0)
        piece["details"]["performances"] = [
            {
                "performance_id": p.performance_id,
                "tempo_ratio": p.tempo_ratio,
                "soundfont": p.soundfont,
                "duration_sec": round(end_sec / p.tempo_ratio + 1.0, 3),
                "onset_fraction": None,
            }
            for p in plans
        ]

    def part(pieces):
        stats = [p["details"]["alignment"] for p in pieces]
        return {
            "pieces": len(pieces),
            "pages": sum(s["pages"] for s in stats),
            "noteheads": sum(s["noteheads"] for s in stats),
            "events": sum(s["performed_notes"] for s in stats),
            "aligned_pairs": sum(s["aligned_performed_notes"] for s in stats),
        }

    table1 = {"all": {"train": part(ok[:-1]), "valid": part([]), "test": part(ok[-1:])}}
    document["summary"]["table1"] = table1
    document["summary"]["msmd_table1"] = {"all": MSMD_ALL}
    out_path.write_text(json.dumps(document), encoding="utf-8")
    return document


def _plots(out):
    return sorted(p.name for p in (out / PLOT_DIR).glob("*.png"))


def test_report_page_in_chromium(built, tmp_path):
    chromium_or_skip()
    work, report_path = built
    report = json.loads(report_path.read_text(encoding="utf-8"))
    failed = [p for p in report["pieces"] if p["status"] == "failed"]
    assert [p["piece_id"] for p in failed] == ["TestX__O1__broken"]

    page = write_report_html(report_path, tmp_path / "plain")
    assert page == tmp_path / "plain" / "report.html"
    expected = [
        "alignment.png",
        "composers.png",
        "failures.png",
        "pages-noteheads.png",
        "stage-seconds.png",
    ]
    assert _plots(tmp_path / "plain") == expected  # no performances in a build to alignment

    with Chromium(width=1200, height=900) as browser:
        browser.open(page)
        images = browser.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        assert sorted(src for src, _ in images) == [f"{PLOT_DIR}/{n}" for n in expected]
        assert all(width > 0 for _, width in images), images
        rows = browser.evaluate(
            "Array.from(document.querySelectorAll('#failed tr')).slice(1)"
            ".map(r => Array.from(r.cells).map(c => c.innerText))"
        )
        assert rows == [
            [
                "TestX__O1__broken",
                failed[0]["stage"],
                failed[0]["error_class"],
                failed[0]["message"][:500].strip(),
            ]
        ]
        assert "no performances" in browser.evaluate(
            "document.getElementById('performances').innerText"
        )
        assert "no split statistics" in browser.evaluate(
            "document.getElementById('table1').innerText"
        )
        assert browser.evaluate("document.querySelectorAll('#pieces tr').length") == 1 + 4
        assert browser.errors == []
        shot = browser.screenshot(tmp_path / "report.png", full_page=True)
    print(f"report screenshot: {shot}")


def test_report_with_splits_and_performances(built, tmp_path):
    chromium_or_skip()
    work, report_path = built
    document = _enriched(work, report_path, tmp_path / "enriched.json")
    page = write_report_html(tmp_path / "enriched.json", tmp_path / "out")
    assert "performances.png" in _plots(tmp_path / "out")

    with Chromium(width=1200, height=900) as browser:
        browser.open(page)
        assert all(browser.evaluate("Array.from(document.images).map(i => i.naturalWidth > 0)"))
        cells = browser.evaluate(
            "Array.from(document.querySelectorAll('table.t1 tr')).slice(2)"
            ".map(r => Array.from(r.cells).map(c => c.innerText))"
        )
        train = document["summary"]["table1"]["all"]["train"]
        assert cells[0] == [
            "all",
            "train",
            *(
                f"{v:,}"
                for k in ("pieces", "pages", "noteheads", "events", "aligned_pairs")
                for v in (train[k], MSMD_ALL["train"][k])
            ),
        ]
        assert [row[0] for row in cells[1:]] == ["valid", "test", "total"]
        parts = document["summary"]["table1"]["all"].values()
        assert cells[-1][5] == f"{sum(p['noteheads'] for p in parts):,}"
        assert cells[-1][6] == f"{sum(p['noteheads'] for p in MSMD_ALL.values()):,}"
        assert browser.errors == []
        shot = browser.screenshot(tmp_path / "report-splits.png", full_page=True)
    print(f"report screenshot: {shot}")


def test_report_is_deterministic_and_handles_bare_reports(built, tmp_path):
    work, report_path = built
    _enriched(work, report_path, tmp_path / "enriched.json")
    first = write_report_html(tmp_path / "enriched.json", tmp_path / "a")
    second = write_report_html(tmp_path / "enriched.json", tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    for name in _plots(tmp_path / "a"):
        assert (tmp_path / "a" / PLOT_DIR / name).read_bytes() == (
            tmp_path / "b" / PLOT_DIR / name
        ).read_bytes()

    # A report of nothing at all still gives a page, and stale plots are removed.
    (tmp_path / "empty.json").write_text(json.dumps({"summary": {}, "pieces": []}))
    empty = write_report_html(tmp_path / "empty.json", tmp_path / "a")
    assert _plots(tmp_path / "a") == []
    assert "No pieces in this report." in empty.read_text(encoding="utf-8")
    assert composer_of({"piece_id": "BachJS__BWV772__inv1", "details": {}}) == "BachJS"
    assert composer_of({"piece_id": "x", "details": {"composer": "MozartWA"}}) == "MozartWA"


class _PageSections(HTMLParser):
    """Title, facts, table rows and missing-note of every ``<section>`` of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._section: dict | None = None
        self._text: list[str] | None = None
        self._row: list[str] = []
        self._facts = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = {"title": "", "facts": [], "rows": [], "missing": ""}
            self.sections[attrs["id"]] = self._section
        elif tag == "table":
            self._facts = attrs.get("class") == "facts"
        elif tag == "tr":
            self._row = []
        elif tag in ("h2", "th", "td") or (tag == "p" and attrs.get("class") == "missing"):
            self._text = []

    def handle_endtag(self, tag):
        text = " ".join("".join(self._text or []).split())
        if tag == "h2":
            self._section["title"] = text
        elif tag == "p" and self._text is not None:
            self._section["missing"] = text
        elif tag in ("th", "td"):
            self._row.append(text)
        elif tag == "tr":
            self._section["facts" if self._facts else "rows"].append(self._row)
        if tag in ("h2", "p", "th", "td"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def _markdown_sections(text):
    """The same, read back from a Markdown report."""
    sections = {}
    for block in text.split("\n## ")[1:]:
        title, *lines = block.splitlines()
        section = sections[title] = {"facts": [], "rows": [], "missing": ""}
        for line in lines:
            if line.startswith("- "):
                section["facts"].append(line[2:].split(": ", 1))
            elif line.startswith("| ") and not line.startswith("| ---"):
                cells = re.split(r"(?<!\\)\|", line)[1:-1]
                section["rows"].append(
                    [c.strip().replace("\\|", "|").replace("\\<", "<") for c in cells]
                )
            elif line.startswith("*") and line.endswith("*"):
                section["missing"] = line.strip("*")
    return sections


def test_markdown_and_html_say_the_same(make_piece, tmp_path):
    """A printed-order fallback and a failure, built for real, in both forms of the report."""
    from msmd_builder.pipeline.report import load_report
    from msmd_builder.pipeline.report.markdown import render_markdown
    from msmd_builder.pipeline.report.sections import report_sections
    from tests.pipeline.test_dask import HEADER
    from tests.stages.align.test_align_jumps import score

    music = r"""{ c'1 | d'1 | e'1_\markup { D.S. } \bar "|." }"""  # no segno to go to
    root, _ = make_piece("nosegno", HEADER + score(music))
    make_piece("rests", BROKEN)
    work = tmp_path / "work"
    runner = CliRunner()
    scan = runner.invoke(main, ["corpus", "scan", str(root), "--work-dir", str(work)])
    assert scan.exit_code == 0, scan.output
    render = runner.invoke(main, ["corpus", "render", "--work-dir", str(work)])
    assert render.exit_code == 0, render.output

    markdown = (work / "reports" / "render.md").read_text(encoding="utf-8")
    # The Markdown written with the outcomes is the one the stored JSON gives.
    document = load_report(work / "reports" / "render.json")
    title = markdown.splitlines()[0][2:]
    assert markdown == render_markdown(report_sections(document), title)

    page = write_report_html(work / "reports" / "render.json", tmp_path / "html")
    parser = _PageSections()
    parser.feed(page.read_text(encoding="utf-8"))
    html_sections = {s.pop("title"): s for s in parser.sections.values()}
    md_sections = _markdown_sections(markdown)
    assert list(html_sections) == list(md_sections) == [s.title for s in report_sections(document)]
    assert html_sections == md_sections

    fallback = md_sections["Built in printed order (1)"]["rows"]
    assert fallback[0] == ["piece", "class", "reason"]
    assert fallback[1] == [
        "TestC__Op1__nosegno",
        "not-unrollable",
        "Dal Segno with no segno sign before the jump (D.S.)",
    ]
    (failed,) = [p for p in document["pieces"] if p["status"] == "failed"]
    assert md_sections["Failed pieces (1)"]["rows"][1] == [
        "TestC__Op1__rests",
        failed["stage"],
        failed["error_class"],
        " ".join(failed["message"][:500].split()),
    ]
    summary = dict(md_sections["Summary"]["facts"])
    assert summary["pieces"] == "2" and summary["failed"] == "1"
