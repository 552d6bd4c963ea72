"""Entry point of rule `report_protocol`: the report's protocol page, Table 1 and config used."""

from alnsfw.entry import config_from_params, run_logged
from alnsfw.report.protocol import write_protocol

out = snakemake.output
run_logged(
    write_protocol,
    snakemake.log[0],
    config=config_from_params(snakemake.params),
    table1_csv=snakemake.input.table1,
    config_yaml=out.config,
    protocol_md=out.md,
    protocol_html=out.html,
)
