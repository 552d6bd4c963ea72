"""The one Markdown writer of the project's tables (report tables, Table 1, fold counts).

Stage-neutral, so the data stage and the report stage write their `.md` tables alike without the
data stage importing the report package.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def markdown_table(title: str, table: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """A titled GitHub-Markdown table followed by its notes as a bullet list.

    Cells are written as they are (`disable_numparse`): callers preformat numbers, and pandas
    would otherwise re-round strings that look numeric.
    """
    body = table.to_markdown(index=False, disable_numparse=True) if len(table) else "_(no rows)_"
    lines = [f"## {title}", "", body, ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
