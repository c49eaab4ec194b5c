"""Command line: ``python -m rushopt worker|server ...`` (also installed as ``rushopt``).

The commands live in :mod:`rushopt.cli`; ``rushopt.__main__:main`` is the
console-script entry point.
"""

from __future__ import annotations

import sys

from rushopt.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
