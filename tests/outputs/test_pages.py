"""Page templates: read from the installed package, values escaped, one shell for both pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import jinja2
import pytest

from msmd_builder.outputs.pages import TEMPLATES, render_page

_INSTALLED = """
import sys
import msmd_builder
from msmd_builder.outputs.pages import TEMPLATES
from msmd_builder.outputs.report_html import write_report_html

print(msmd_builder.__file__)
print(TEMPLATES)
print(write_report_html(sys.argv[1], sys.argv[2]))
"""


def test_templates_are_package_resources():
    assert TEMPLATES == resources.files("msmd_builder.outputs") / "templates"
    with pytest.raises(jinja2.TemplateNotFound, match="nothing.html"):
        render_page("nothing.html")


def _viewer_page(**overrides):
    context = {
        "title": "t",
        "heading": "h",
        "subtitle": "",
        "facts": [],
        "legend": [],
        "colours": {
            name: "rgb(1,2,3)" for name in ("system", "measure", "aligned", "tied", "unaligned")
        },
        "pages": [],
        "data": {"performances": []},
    }
    return render_page("viewer.html", **{**context, **overrides})


def test_values_cannot_break_out_of_the_page():
    hostile = "</script><script>alert(1)</script>"
    page = _viewer_page(heading=hostile, data={"performances": [], "title": hostile})
    # The heading is escaped; the data stays valid JSON that cannot end its element.
    assert hostile not in page
    assert "<h1>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    assert page.count("</script>") == 2
    start = page.index('<script type="application/json" id="data">') + len(
        '<script type="application/json" id="data">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert data == {"performances": [], "title": hostile}


def test_both_pages_share_one_shell(tmp_path):
    from msmd_builder.outputs.report_html import write_report_html

    shell = (TEMPLATES / "page.html").read_text(encoding="utf-8")
    head = shell[: shell.index("<title>")]
    (tmp_path / "empty.json").write_text(json.dumps({"summary": {}, "pieces": []}))
    report = write_report_html(tmp_path / "empty.json", tmp_path).read_text(encoding="utf-8")
    assert report.startswith(head) and _viewer_page().startswith(head)
    base_style = "body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: #222; }"
    assert base_style in report and base_style in _viewer_page()


@pytest.mark.slow
def test_an_installed_package_renders_its_own_templates(wheel, tmp_path):
    """Pages come from the templates inside the installed package, not from a checkout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    installed = site / "msmd_builder" / "outputs" / "templates"
    # Mark the installed shell, so the page shows which copy it was rendered from.
    shell = installed / "page.html"
    shell.write_text(
        shell.read_text(encoding="utf-8").replace("<body>", "<body>\n<!-- installed copy -->"),
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"summary": {}, "pieces": []}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _INSTALLED, str(report), str(tmp_path / "out")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    )
    package, templates, page = result.stdout.splitlines()
    assert Path(package) == site / "msmd_builder" / "__init__.py"
    assert Path(templates) == installed
    text = Path(page).read_text(encoding="utf-8")
    assert "<!-- installed copy -->" in text and "No pieces in this report." in text
