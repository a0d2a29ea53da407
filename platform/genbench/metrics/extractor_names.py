"""The feature extractors `eval.features` names: genbench's own and those plug-ins declare; no torch."""

from __future__ import annotations

from typing import Any

from genbench.errors import ConfigError
from genbench.plugins import EXTRACTORS_GROUP, ExtractorSpec, expect
from genbench.registry import Registry

# genbench's own, chosen in genbench.metrics.extractors.extractor_for: 'auto' picks one of the others by the data
BUILT_IN = ("auto", "classifier", "inception", "learned", "pixels")


def adopt(name: str, spec: Any) -> ExtractorSpec:
    """A plug-in extractor's spec, unless it takes a built-in name."""
    if name in BUILT_IN:
        raise ConfigError(f"feature extractor '{name}' exists already", fix="rename the plug-in's entry point")
    return expect(spec, ExtractorSpec, name)


# Plug-in extractors only (the built-in ones are code paths of extractor_for, not entries).
EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor", group=EXTRACTORS_GROUP, adopt=adopt)


def feature_names() -> list[str]:
    """Every valid `eval.features` value (reads the installed plug-ins)."""
    return [*BUILT_IN, *EXTRACTORS.names()]
