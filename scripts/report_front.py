"""Entry point of rule `report_front`: Table 2 and the summary figure for the report front page."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # alnsfw without an install

from alnsfw.entry import run_logged
from alnsfw.report.front import write_front_page

run_logged(
    write_front_page,
    snakemake.log[0],
    table2_html=snakemake.input.table2,
    summary_png=snakemake.input.summary,
    out=snakemake.output.rst,
)
