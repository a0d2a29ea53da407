"""The data sets by name (built-in and plug-in) and the data.* keys each reads: no torch, so that config checks and
`validate` stay light."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.errors import ConfigError
from genbench.plugins import DATASETS_GROUP, DatasetSpec, expect, lazy
from genbench.registry import Registry

# The data.* keys (besides data.name) each data set reads; the others keep their defaults, which mean nothing for it
# (a folder of images is split by data.test_fraction, not cut to data.n_train / data.n_test). The resolved config
# that `genbench train` prints leaves those out; tests/test_keys.py checks the offline sets against their loaders.
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "ring8": ("n_train", "n_test"),
    "grid25": ("n_train", "n_test"),
    "dirac": ("n_train", "n_test"),
    "digits": (),
    "stacked_digits": ("n_train", "n_test"),
    "mnist": ("n_train", "n_test", "image_size", "channels"),
    "fashion_mnist": ("n_train", "n_test", "image_size", "channels"),
    "cifar10": ("n_train", "n_test", "image_size", "channels"),
    "celeba": ("path", "n_train", "n_test", "test_fraction", "image_size", "channels"),
    "files": ("path", "test_fraction", "image_size", "channels"),
}


def adopt(name: str, spec: Any) -> Callable[[Any], Any]:
    """A plug-in data set's loader (imported on its first call), once its DatasetSpec names data.* keys that exist;
    DATA_KEYS then holds the keys it reads."""
    spec = expect(spec, DatasetSpec, name)
    readable = set().union(*DATA_KEYS.values())
    unknown = sorted(set(spec.keys) - readable)
    if unknown:
        raise ConfigError(f"keys {unknown} are not data.* keys", fix=f"valid: {', '.join(sorted(readable))}")
    DATA_KEYS[name] = tuple(spec.keys)
    return lazy(spec.loader)


# Every data set and the module that registers it: names are checked without importing torch (config checks,
# `genbench validate`); a module is imported when its data set is first loaded.
DATASETS: Registry[Any] = Registry(
    "dataset",
    {
        "ring8": "genbench.data.toy2d",
        "grid25": "genbench.data.toy2d",
        "dirac": "genbench.data.dirac",
        "digits": "genbench.data.digits",
        "stacked_digits": "genbench.data.digits",
        "mnist": "genbench.data.downloads",
        "fashion_mnist": "genbench.data.downloads",
        "cifar10": "genbench.data.downloads",
        "celeba": "genbench.data.downloads",
        "files": "genbench.data.files",
    },
    group=DATASETS_GROUP,
    adopt=adopt,
)
