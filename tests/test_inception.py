"""FID Inception-v3: the weights file's key layout, pool3 features, selection by eval.features, clear errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.cli import main
from genbench.config import DataConfig, from_flat
from genbench.data import load_dataset
from genbench.errors import ConfigError
from genbench.metrics import inception
from genbench.metrics.extractors import extractor_for
from genbench.metrics.inception import FIDInceptionV3, preprocess
from genbench.train.evaluate import Evaluator

# Shapes as pytorch-fid's fid_inception_v3() (torchvision's Inception3, no aux head, 1,008 classes) defines them.
KNOWN_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_2b_3x3.bn.weight": (64,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "Mixed_7c.branch1x1.bn.running_var": (320,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}
TOP_LEVEL = {
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "fc",
}
# torchvision documents 27,161,264 parameters for inception_v3 with its aux head (3,326,696 of them:
# 768*128 + 2*128 + 128*768*25 + 2*768 + 768*1000 + 1000) and 1,000 classes; 8 more classes add 8 * 2049.
FID_INCEPTION_PARAMS = 27_161_264 - 3_326_696 + 8 * 2049


def _random_net(seed: int = 0) -> FIDInceptionV3:
    """Random weights at a scale that keeps activations O(1) through 94 layers (He normal; random BN stats)."""
    gen = torch.Generator().manual_seed(seed)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * math.sqrt(2 / fan_in)
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1, generator=gen)
            module.running_var.uniform_(0.8, 1.2, generator=gen)
    return net.eval()


@pytest.fixture(scope="module")
def net() -> FIDInceptionV3:
    return _random_net()


@pytest.fixture(scope="module")
def weights(net: FIDInceptionV3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inception") / inception.FID_WEIGHTS_FILE  # the real file's name, other bytes
    torch.save(net.state_dict(), path)
    return path


def _sha8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def _images(tmp_path: Path, channels: int, n: int = 24) -> Path:
    """An unlabelled .npz of n 8x8 images (not digits, so no classifier applies), split 18 / 6."""
    rng = np.random.default_rng(channels)
    path = tmp_path / f"images{channels}.npz"
    np.savez(path, x=rng.integers(0, 256, (n, channels, 8, 8), dtype=np.uint8))
    return path


def _files(path: Path) -> object:
    return load_dataset(DataConfig(name="files", path=str(path), test_fraction=0.25))


def test_state_dict_has_the_weights_file_keys_and_shapes(net: FIDInceptionV3) -> None:
    state = net.state_dict()
    assert {k: tuple(state[k].shape) for k in KNOWN_SHAPES} == KNOWN_SHAPES
    assert {k.split(".")[0] for k in state} == TOP_LEVEL  # no AuxLogits, no parameters outside the file's modules
    assert sum(k.endswith(".conv.weight") for k in state) == 94 and not any(k.endswith("conv.bias") for k in state)
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert sum(p.numel() for p in net.parameters()) == FID_INCEPTION_PARAMS == 23_850_960


def test_pool3_features_shape_finite_and_grey_is_repeated_rgb(net: FIDInceptionV3) -> None:
    grey = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert preprocess(grey).shape == (2, 3, 299, 299) and preprocess(grey).min() >= -1 and preprocess(grey).max() <= 1
    with torch.no_grad():
        features = net.pool3(preprocess(grey))
        logits = net(preprocess(grey.repeat(1, 3, 1, 1)))
    assert features.shape == (2, 2048) and torch.isfinite(features).all() and logits.shape == (2, 1008)
    assert features.std(dim=0).mean() > 1e-3  # two different images give different features
    assert torch.allclose(logits, net.fc(features), atol=1e-5)  # grey input = the RGB image with equal channels


def test_pool_branches_follow_tensorflow(net: FIDInceptionV3) -> None:
    """Mixed_5b..7b average-pool without counting padding, Mixed_7c max-pools (pytorch-fid's FID blocks)."""
    seen: dict[str, torch.Tensor] = {}
    blocks = {"Mixed_5b": 192, "Mixed_6b": 768, "Mixed_7b": 1280, "Mixed_7c": 2048}
    for name, channels in blocks.items():
        block = getattr(net, name)
        hook = block.branch_pool.register_forward_hook(lambda m, inp, out, n=name: seen.__setitem__(n, inp[0]))
        with torch.no_grad():
            block(torch.full((1, channels, 5, 5), 2.0))  # constant input: zero padding would show at the border
            if name == "Mixed_7c":
                x = torch.randn(1, channels, 5, 5, generator=torch.Generator().manual_seed(1))
                block(x)
                assert torch.equal(seen[name], torch.nn.functional.max_pool2d(x, 3, 1, 1))
        hook.remove()
        if name != "Mixed_7c":
            assert torch.allclose(seen[name], torch.full_like(seen[name], 2.0)), name


def test_weights_load_strictly_with_or_without_batch_counters(
    net: FIDInceptionV3, weights: Path, tmp_path: Path
) -> None:
    loaded = inception.load_fid_inception(weights)
    assert torch.equal(loaded.Mixed_7c.branch_pool.conv.weight, net.Mixed_7c.branch_pool.conv.weight)
    old = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    assert torch.equal(inception.load_fid_inception(tmp_path / "old.pth").fc.bias, net.fc.bias)


def test_wrong_or_broken_files_are_one_clear_error(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(1000, 2048), "AuxLogits.fc.bias": torch.zeros(1000)}, tmp_path / "tv.pth")
    with pytest.raises(
        ConfigError,
        match=r"eval\.inception_weights: .*tv\.pth is not the FID Inception-v3 layout: "
        r"\d+ missing keys.*unexpected keys, e\.g\. AuxLogits.*fc\.weight \(1000, "
        r"2048\).*pytorch-fid",
    ):
        inception.load_fid_inception(tmp_path / "tv.pth")
    (tmp_path / "page.pth").write_text("<html>rate limited</html>")
    with pytest.raises(ConfigError, match=r"cannot read .*page\.pth as a weights file.*download https://github"):
        inception.load_fid_inception(tmp_path / "page.pth")


def test_env_var_weights_give_inception_scores_named_with_the_file_hash(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(weights))
    data = _files(_images(tmp_path, channels=1))
    evaluator = Evaluator(data, n_samples=6)  # eval.features=auto: Inception, as a weights file is present
    name = evaluator.provenance()["provenance.extractor"]
    assert name.startswith("inception-v3-fid pool3 2048-d") and f"sha256 {_sha8(weights)}" in name
    assert inception.FID_WEIGHTS_FILE in name and "NOT the pytorch-fid release file" in name
    assert "8x8->299x299" in name and "grey repeated to 3 channels" in name
    assert evaluator.real.shape == (6, 2048)

    class Noise:  # a generator that outputs uniform noise images
        def sample(self, n: int) -> torch.Tensor:
            return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2))

    scores = evaluator(Noise())
    assert math.isfinite(scores["fd"]) and scores["fd"] > 0 and math.isfinite(scores["kid"])


def test_run_key_selects_inception_and_batches_features(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(inception, "CHUNK", 3)  # 4 images: chunks of 3 and 1 give the features of one batch
    cfg = from_flat({"family": "vae", "eval.features": "inception", "eval.inception_weights": str(weights)})
    data = _files(_images(tmp_path, channels=3))
    extractor = extractor_for(data, cfg.eval.features, cfg.eval.inception_weights)
    assert "grey" not in extractor.name and f"sha256 {_sha8(weights)}" in extractor.name
    batched = extractor.features(data.test[:4])
    with torch.no_grad():
        whole = inception.load_fid_inception(weights).pool3(preprocess(data.test[:4]))
    assert batched.shape == (4, 2048) and torch.allclose(batched, whole, rtol=1e-4, atol=1e-5)


def test_auto_without_weights_is_learned_and_explicit_paths_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)  # the test cache (GENBENCH_CACHE) holds no weights
    monkeypatch.setattr("genbench.metrics.learned.STEPS", 5)  # the network's training is tested in test_scores.py
    data = _files(_images(tmp_path, channels=3))
    assert extractor_for(data).name.startswith("learned-contrastive-cnn v1 32-d (SimCLR on this data's 18 training")
    assert extractor_for(data, "pixels").name == "pixels 8x8 (no learned features)"
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ConfigError, match=rf"eval\.inception_weights: eval\.features=auto .*{missing}"):
        extractor_for(data, "auto", str(missing))
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(missing))
    with pytest.raises(ConfigError, match=r"path from \$GENBENCH_INCEPTION_WEIGHTS"):
        extractor_for(data, "auto")
    with pytest.raises(ConfigError, match=r"eval\.features: the digit classifier scores only digits"):
        extractor_for(data, "classifier")


def test_unknown_feature_value_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"eval\.features: unknown feature extractor 'inceptoin'.*'inception'"):
        from_flat({"family": "gan", "eval.features": "inceptoin"})


def test_cli_inception_without_weights_exits_2_naming_key_path_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    images = _images(tmp_path, channels=3)
    code = main(
        [
            "train",
            "vae",
            "--data",
            "files",
            "--set",
            f"data.path={images}",
            "--set",
            "data.test_fraction=0.25",
            "--set",
            "train.steps=2",
            "--set",
            "eval.features=inception",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    default = inception.cache_dir() / inception.FID_WEIGHTS_FILE
    assert "eval.inception_weights" in err and str(default) in err and inception.FID_WEIGHTS_URL in err
