"""HTML pages rendered from the Jinja2 templates shipped in ``msmd_builder/outputs/templates/``.

Both pages extend one shell, ``page.html`` (doctype, head, base CSS), and
inline their own CSS and JavaScript (``report.css``; ``viewer.css``,
``viewer.js``) with ``{% include %}``, so each page is a single file that
works from ``file://`` with no network.

The templates are read through :mod:`importlib.resources` from the installed
package (``pyproject.toml`` lists them as package data), never from a path in
a source checkout.  Jinja2 autoescapes every value put into a page; data for
scripts goes through its ``tojson`` filter, which escapes ``<``, ``>``, ``&``
and ``'`` so no value can close a ``<script>`` element.  Jinja2 rather than
:class:`string.Template` because the pages loop over sections, tables and
boxes and share a shell, which ``string.Template`` would leave to Python
string building again.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2

from msmd_builder.pipeline.report.model import Compared, format_value

__all__ = ["TEMPLATES", "render_page"]

#: Where the templates are, as an :mod:`importlib.resources` traversable.
TEMPLATES = resources.files("msmd_builder.outputs") / "templates"


def _template_source(name: str) -> str | None:
    """Text of a shipped template, None when there is no such file (Jinja2 then says so)."""
    path = TEMPLATES / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # Compact, key-sorted JSON: the same data gives the same page.
    environment.policies["json.dumps_kwargs"] = {
        "sort_keys": True,
        "ensure_ascii": False,
        "separators": (",", ":"),
    }
    environment.filters["value"] = format_value
    environment.tests["compared"] = lambda cell: isinstance(cell, Compared)
    return environment


def render_page(template: str, **context: Any) -> str:
    """Render one page template (``"report.html"``, ``"viewer.html"``) with ``context``.

    Raises
    ------
    jinja2.TemplateNotFound
        If the package has no such template (a broken installation).
    """
    return _environment().get_template(template).render(**context)
