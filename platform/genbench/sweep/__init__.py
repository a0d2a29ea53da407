"""Sweeps: study files, the define-by-run search space, and the Ray Tune runner."""
