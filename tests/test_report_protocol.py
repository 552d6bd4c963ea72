"""The protocol page: key settings, Table 1 and the complete config."""

from __future__ import annotations

import pandas as pd
import yaml

from alnsfw.report.protocol import protocol_table, write_protocol


def test_protocol_page(tmp_path):
    config = {
        "data": {"source": "synthetic", "root": "resources/synthetic"},
        "splits": {"folds": [0, 1], "seeds": [0]},
        "al": {"strategies": ["random", "entropy"], "query_size": 40},
        "report": {"interpolation": "nearest"},
    }
    table1 = tmp_path / "table1.csv"
    pd.DataFrame({"fold": [0], "split": ["test"], "porn": [123], "nonporn": [456]}).to_csv(
        table1, index=False
    )
    out = {n: tmp_path / n for n in ("config_used.yaml", "protocol.md", "protocol.html")}
    write_protocol(
        config, table1, out["config_used.yaml"], out["protocol.md"], out["protocol.html"]
    )
    assert yaml.safe_load(out["config_used.yaml"].read_text()) == config
    page = out["protocol.html"].read_text()
    assert "Table 1" in page and "456" in page and "query_size: 40" in page
    md = out["protocol.md"].read_text()
    assert "al.query_size" in md
    assert "nearest" in md


def test_protocol_table_marks_unset_keys():
    table = protocol_table({"al": {"query_size": 500}}).set_index("Config key")
    assert table.loc["al.query_size", "Value"] == "500"
    assert table.loc["model.weights", "Value"] == "(not set)"
