"""The build report: ``report.json`` (every fact), ``report.md`` and the model both forms share.

- :mod:`.write`: :func:`write_report` stores the outcomes and their summary as
  JSON and renders the Markdown; :func:`load_report` reads the JSON back.
- :mod:`.facts`: facts pulled out of the pieces (totals, timings, counts).
- :mod:`.model`: the renderer-neutral sections, facts and tables.
- :mod:`.sections`: :func:`report_sections` builds them from the JSON document.
- :mod:`.markdown`: :func:`render_markdown` writes them as Markdown; the HTML
  form is :func:`msmd_builder.outputs.report_html.write_report_html`.
"""

from msmd_builder.pipeline.report.write import load_report, write_report

__all__ = ["write_report", "load_report"]
