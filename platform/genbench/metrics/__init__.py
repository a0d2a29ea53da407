"""Metrics: pure functions, tensors in, floats out."""
