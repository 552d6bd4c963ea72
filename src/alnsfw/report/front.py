"""The front page of `snakemake --report`: Table 2 and the summary figure, where a reader lands.

Snakemake's report opens on the workflow description (workflow/report/workflow.rst), which can
only show text. This writes an reStructuredText fragment that workflow.rst includes: Table 2 and
its notes as raw HTML, and the summary figure as an inline PNG (a data URI), so the two results
the run exists for are on the first screen instead of two clicks away.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from alnsfw.io import write_text

LINE = 1000  # characters per line of the raw block
# Scoped to the fragment, so the report's own styles are left alone.
STYLE = (
    ".alnsfw-front table{border-collapse:collapse;margin:0.5em 0}"
    ".alnsfw-front th,.alnsfw-front td{border:1px solid #bbb;padding:2px 6px;text-align:right}"
    ".alnsfw-front th{background:#eee}"
    ".alnsfw-front td:first-child,.alnsfw-front th:first-child{text-align:left}"
    ".alnsfw-front img{max-width:100%;height:auto}"
    ".alnsfw-front ul{font-size:smaller}"
)


def table_fragment(page: str) -> str:
    """The title, table and notes of a page written by alnsfw.report.render.html_page."""
    match = re.search(r"<body>(.*)</body>", page, re.S)
    if match is None:
        raise ValueError("not a table page of alnsfw.report.render.html_page")
    return match.group(1).replace("<h2>", "<h3>").replace("</h2>", "</h3>")


def _raw_lines(markup: str, png_base64: str) -> list[str]:
    """`markup` with `{png}` in place of the image data, cut into lines docutils accepts.

    docutils refuses lines over 10,000 characters. The markup is cut only after a `>` (a line
    break between tags is plain whitespace), the base64 anywhere (a browser drops newlines inside
    a data URI: URL parsing removes ASCII newlines).
    """
    head, tail = markup.replace("\n", " ").split("{png}")
    lines: list[str] = []
    for piece in re.split(r"(?<=>)", head):
        if lines and len(lines[-1]) + len(piece) <= LINE:
            lines[-1] += piece
        else:
            lines.append(piece)
    lines += [png_base64[i : i + LINE] for i in range(0, len(png_base64), LINE)]
    lines.append(tail)
    return [line for line in lines if line]


def front_page_rst(table2_html: str | Path, summary_png: str | Path) -> str:
    """The reStructuredText fragment: one raw-HTML block with the table, then the figure."""
    table = table_fragment(Path(table2_html).read_text())
    png = base64.b64encode(Path(summary_png).read_bytes()).decode("ascii")
    alt = html.escape("Learning curves averaged over folds (summary figure)")
    markup = (
        f'<div class="alnsfw-front"><style>{STYLE}</style>{table}'
        f'<h3>Learning curves, all folds</h3><img alt="{alt}" src="data:image/png;base64,{{png}}">'
        "</div>"
    )
    return ".. raw:: html\n\n" + "".join(f"   {line}\n" for line in _raw_lines(markup, png))


def write_front_page(table2_html: str, summary_png: str, out: str) -> None:
    """Write the fragment that workflow/report/workflow.rst includes."""
    write_text(out, front_page_rst(table2_html, summary_png))
