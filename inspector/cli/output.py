"""How the CLI prints for a person and for a script.

Rich fits a table to the terminal, and to 80 columns when the output is piped,
cutting long cells with an ellipsis: a version name piped into another command
would arrive as ``bench…``. Piped, the console is as wide as the table needs.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PIPED_WIDTH = 10_000  # a table is never wider than its content: this only means "do not cut"


def console(stream: TextIO | None = None) -> Console:
    """A console for ``stream`` (stdout): the terminal's width, or no limit when piped."""
    out = stream or sys.stdout
    if out.isatty():
        return Console(file=out)
    return Console(file=out, width=PIPED_WIDTH, soft_wrap=True)
