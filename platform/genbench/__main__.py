"""Entry point for `python -m genbench`."""

from __future__ import annotations

from genbench.cli import main

raise SystemExit(main())
