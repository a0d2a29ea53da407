"""genbench: distributed benchmark and hyperparameter search for generative model families."""
from __future__ import annotations

__version__ = "0.1.0"
