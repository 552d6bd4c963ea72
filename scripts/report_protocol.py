"""Entry point of rule `report_protocol`: the report's protocol page, Table 1 and config used."""

import logging

from alnsfw.report.protocol import write_protocol

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
out = snakemake.output
write_protocol(snakemake.params.config, snakemake.input.table1, out.config, out.md, out.html)
