"""The report's front page fragment: Table 2 and the summary figure, in lines docutils accepts."""

import base64

from docutils.core import publish_parts

from alnsfw.report.front import front_page_rst
from alnsfw.report.render import html_page


def test_front_page_holds_table2_and_the_figure(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"% labelled": ["20", "30"], "Random": ["80.1 ± 1.0", "81.2 ± 0.9"]})
    page = tmp_path / "table2.html"
    page.write_text(html_page("Table 2: test accuracy", table, ["note one"]))
    png = tmp_path / "summary.png"
    png.write_bytes(b"\x89PNG" + bytes(range(256)) * 200)  # ~51 kB: longer than a docutils line
    rst = front_page_rst(page, png)
    assert max(len(line) for line in rst.splitlines()) < 10_000
    html = publish_parts(rst, writer="html")["html_body"]
    assert "Table 2: test accuracy" in html and "81.2 ± 0.9" in html and "note one" in html
    data = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode("".join(data.split())) == png.read_bytes()
    assert "System Message" not in html
