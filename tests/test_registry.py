"""Registries: names checked without importing their modules, every declared name registered by its module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from genbench.data import DATASETS
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.gan import GAN_LOSSES, NORMS, PENALTIES
from genbench.nets.activations import ACTIVATIONS
from genbench.registry import Registry

DECLARED = {"dataset": DATASETS, "GAN loss": GAN_LOSSES, "GAN penalty": PENALTIES, "discriminator norm": NORMS}


@pytest.mark.parametrize("kind", DECLARED)
def test_every_declared_name_is_registered_by_its_module_and_nothing_else_is(kind: str) -> None:
    registry = DECLARED[kind]
    for name, module in registry.modules.items():
        importlib.import_module(module)
        assert name in registry._entries, f"{module} does not register {kind} '{name}'"
    assert set(registry._entries) == set(registry.modules)
    assert all(registry.describe()[name] for name in registry.names())  # a one-line description each


def test_a_declared_registry_refuses_an_undeclared_name() -> None:
    registry: Registry[int] = Registry("thing", {"a": "genbench.errors"})
    with pytest.raises(ValueError, match="not declared"):
        registry.register("b")(2)


def test_check_names_the_key_and_suggests_without_importing() -> None:
    with pytest.raises(ConfigError, match="unknown GAN loss 'hinje'") as err:
        GAN_LOSSES.check("hinje", key="loss")
    assert "hinge" in str(err.value) and err.value.key == "loss"
    assert GAN_LOSSES.check("hinge") == "hinge" and "relu" in ACTIVATIONS and ["x"] not in DATASETS


def test_names_and_config_checks_import_no_torch() -> None:
    probe = (
        "import sys\nfrom genbench.config import from_flat\n"
        "from genbench.data import DATASETS\nfrom genbench.gan import GAN_LOSSES\n"
        "for f in ('gan', 'vae', 'diffusion', 'flow', 'autoregressive'):\n"
        "    from_flat({'family': f, 'data.name': 'digits'})\n"
        "from_flat({'family': 'gan', 'gan.loss': 'hinge', 'gan.penalty': 'r1', 'gan.activation': 'maxout'})\n"
        "print(len(DATASETS.names()), len(GAN_LOSSES.names()), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(DATASETS.names())), "5", "False"]


def test_a_family_spec_names_its_builder_and_imports_it_on_use() -> None:
    for name in FAMILIES.names():
        spec = FAMILIES.get(name)
        assert spec.builder.startswith(f"genbench.families.{name}:") and callable(spec.build)
