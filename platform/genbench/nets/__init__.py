"""Shared network building blocks."""
