"""from_flat / to_flat: round trip, defaults, unknown keys, types, value constraints, --set parsing."""

from __future__ import annotations

from typing import Any

import pytest

from genbench.config import from_flat, parse_set, to_flat, valid_keys
from genbench.errors import ConfigError


def test_round_trip_and_defaults() -> None:
    cfg = from_flat({"family": "gan", "gan.loss": "hinge", "train.steps": 7})
    flat = to_flat(cfg)
    assert to_flat(from_flat(flat)) == flat
    assert flat["gan.loss"] == "hinge" and flat["train.steps"] == 7
    assert flat["train.batch_size"] == 256 and flat["gan.penalty"] == "none" and flat["seed"] == 0
    assert set(flat) == set(valid_keys("gan"))
    assert all("/" not in key for key in flat)


def test_empty_dict_defaults_to_gan() -> None:
    cfg = from_flat({})
    assert cfg.family == "gan" and cfg.data.name == "grid25" and cfg.model.loss == "non_saturating"


def test_unknown_key_suggests() -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "gan", "gan.los": "hinge"})
    assert "gan.los" in str(err.value) and "did you mean" in str(err.value) and "'gan.loss'" in str(err.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.steps", "5"),
        ("train.steps", 5.0),
        ("train.steps", True),
        ("optim.lr_g", True),
        ("gan.spectral_norm", "yes"),
        ("gan.loss", 3),
        ("seed", "x"),
    ],
)
def test_wrong_type_rejected(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({key: value})
    assert key in str(err.value)


def test_float_from_yaml_string() -> None:
    assert from_flat({"optim.lr_g": "1e-4"}).optim.lr_g == 1e-4
    assert isinstance(from_flat({"optim.lr_d": 1}).optim.lr_d, float)


@pytest.mark.parametrize(
    "key, value",
    [
        ("gan.pack", 5),
        ("gan.pack", 0),
        ("gan.ema", 1.0),
        ("gan.ema", -0.1),
        ("optim.lr_g", 0),
        ("optim.beta1_d", 1.0),
        ("train.steps", 0),
        ("data.n_train", -1),
        ("gan.g_width", 0),
        ("gan.penalty_weight", -1.0),
        ("gan.loss", "hinj"),
        ("gan.penalty", "r2"),
        ("gan.activation", "tanh"),
    ],
)
def test_value_constraints_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({key: value})
    assert key in str(err.value)


def test_bad_clip_names_gan_clip() -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"gan.clip": 0.0})
    assert err.value.key == "gan.clip"


def test_where_is_the_source_in_messages() -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"gan.loss": "hinj"}, where={"gan.loss": "study.yaml:12"})
    assert str(err.value).startswith("study.yaml:12: gan.loss:") and "hinge" in str(err.value)
    with pytest.raises(ConfigError) as err:
        from_flat({"gan.los": "hinge"}, where={"gan.los": "--set"})
    assert str(err.value).startswith("--set: gan.los:")
    with pytest.raises(ConfigError) as err:
        from_flat({"train.steps": "x"}, where={"train.steps": "a.yaml:3"})
    assert err.value.source == "a.yaml:3"


@pytest.mark.parametrize("flat", [{"seed": "x"}, {"family": "gann"}])
def test_where_names_source_of_seed_and_family(flat: dict[str, Any]) -> None:
    key = next(iter(flat))
    with pytest.raises(ConfigError) as err:
        from_flat(flat, where={key: "run.yaml:2"})
    assert "run.yaml:2" in str(err.value)


def test_parse_set() -> None:
    parsed = parse_set(["train.steps=5", "gan.spectral_norm=true", "optim.lr_g=1e-3", "gan.loss = hinge"])
    assert parsed["train.steps"] == 5 and parsed["gan.spectral_norm"] is True and parsed["gan.loss"] == "hinge"
    cfg = from_flat(parsed)
    assert cfg.optim.lr_g == 1e-3 and cfg.train.steps == 5 and cfg.model.spectral_norm is True


@pytest.mark.parametrize("pair", ["nokey", "=5", " =5"])
def test_parse_set_rejects(pair: str) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_set([pair])
