"""Entry points run by make (``python -m inspector.training.<name>``): one-line errors, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from inspector.detect.base import DetectorError


def cli_main(fn: Callable[[list[str] | None], int]) -> None:
    """Run ``fn``; a user error (bad data, broken model, missing file) ends as one line, exit code 2."""
    try:
        sys.exit(fn(None))
    except (DetectorError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
