"""The one exception type of the data stage.

A DataError is a problem with the input data (a file, a list, a label), not with the code: its
message names the offending file and says what to do, so the user can act without a traceback.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad or inconsistent input data; the message names the file and the fix."""
