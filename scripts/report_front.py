"""Entry point of rule `report_front`: Table 2 and the summary figure for the report front page."""

from alnsfw.entry import run_logged
from alnsfw.report.front import write_front_page

run_logged(
    write_front_page,
    snakemake.log[0],
    table2_html=snakemake.input.table2,
    summary_png=snakemake.input.summary,
    out=snakemake.output.rst,
)
