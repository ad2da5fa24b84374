"""Where the shipped policies and example configuration live.

The gateway must start from any working directory: in a source checkout (or
an editable install) they sit beside the packages; a wheel installs them under
``<prefix>/share/xinyi-gateway`` (``pyproject.toml``'s shared-data).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["shipped"]


def shipped(name: str) -> Path:
    """The shipped ``policies`` or ``config`` directory."""
    candidates = [
        Path(__file__).resolve().parent.parent / name,
        Path(sys.prefix) / "share" / "xinyi-gateway" / name,
    ]
    for path in candidates:
        if path.is_dir():
            return path
    return candidates[0]
