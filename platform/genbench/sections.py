"""The sections of a run's configuration that every family shares (data, train, eval), the RunConfig that holds
them with the family's own, and the checks a section makes of itself; no family registry (genbench.config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NewType

from genbench.data.names import DATASETS
from genbench.errors import ConfigError, suggest
from genbench.metrics.extractor_names import BUILT_IN, EXTRACTORS, feature_names

COMMON_SECTIONS = ("data", "train", "eval")
DEVICES = ("auto", "cpu", "cuda")


# Type of an option that is 'auto', 'true' or 'false'; a YAML true / false is stored as the string, so that its
# config.* column has one type whatever each trial chose. A NewType: the values are plain str (YAML and Parquet
# write them as such), and mypy still tells a switch field from a free string.
Switch = NewType("Switch", str)
AUTO = Switch("auto")


SWITCH_VALUES = ("auto", "true", "false")


AUTO_MEANS = {"batched_seeds": "auto batches the seeds where the family and settings allow it"}


def switch(value: object, key: str) -> str:
    """'auto', 'true' or 'false' from a bool or one of those strings; anything else is a ConfigError."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in SWITCH_VALUES:
        return value.lower()
    raise ConfigError(
        f"expected true, false or auto, got {value!r}",
        key=key,
        fix=AUTO_MEANS.get(
            key.rsplit(".", 1)[-1],
            "auto decides by the device: on where a GPU is present and the option is safe, off on CPU",
        ),
    )


@dataclass
class DataConfig:
    """Which data set, and how much of it the run keeps in memory."""

    name: str = "grid25"  # the data set (genbench list datasets); 'files' is your own data at data.path
    n_train: int = 50_000  # training examples: drawn once with a fixed seed (toy, stacked), or a fixed subset
    n_test: int = 10_000  # test examples (the reference of the quality and likelihood scores), likewise
    path: str = ""  # user data ('files'): a folder of images, a .npy/.npz array or a Parquet file
    image_size: int = 0  # user images: resize to image_size x image_size (0: keep the files' size)
    channels: int = 0  # user images: 1 (grey) or 3 (RGB); 0: as stored
    # user data: share held out as the test split (fixed seed); a 'files' set of images holds out at least 150 (at
    # most a quarter of them), the reference its feature scores need (docs/scores-on-your-images.md)
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        DATASETS.check(self.name, key="name")
        _check_positive(self, "n_train", "n_test")
        if self.name == "files" and not self.path:
            raise ConfigError("data.name 'files' needs data.path", key="path", fix="set data.path=DIR_OR_FILE")
        if self.channels not in (0, 1, 3) or self.image_size < 0 or not 0 < self.test_fraction < 1:
            raise ConfigError(
                "channels must be 0, 1 or 3, image_size >= 0, test_fraction in (0, 1)",
                key="channels" if self.channels not in (0, 1, 3) else "test_fraction",
            )


@dataclass
class TrainConfig:
    """Length of training, batch size and the divergence guard shared by every family."""

    steps: int = 2000  # training steps (generator updates for the GAN); a study's budget sets it; the most steps
    # under a device-second or FLOP budget
    # A compute budget instead of steps (0: none); learning-rate decay and the VAE's KL warm-up then run over the
    # steps the run is expected to take (genbench.train.plan).
    # device-seconds of training steps: GPU seconds, or CPU core-seconds without a GPU; summed over data-parallel
    # workers; evaluation is not counted
    device_s: float = 0.0
    flops: float = 0.0  # FLOPs of training steps (matmuls and convolutions, counted on the first step)
    batch_size: int = 256  # training examples per step
    log_every: int = 10  # train.* scalars are averaged and synced to the host once per window
    diverge_loss: float = 1.0e5  # |loss| above this counts as an explosion
    threads: int = 1  # torch intra-op threads of this run; concurrent trials must not oversubscribe
    collapse_evals: int = 3  # stop when this many evaluations in a row find one mode only (0: never)
    checkpoint_every: int = 500  # steps between checkpoints of a Ray Train run (0: none); in-process runs keep none
    # Where and how the run computes, decided in the process that trains (a CPU driver may launch GPU workers):
    # 'auto' is the GPU where one is present and the option is safe there, off on CPU (genbench.train.device).
    device: str = "auto"  # auto | cpu | cuda
    bf16: Switch = AUTO  # bf16 autocast of the training forward passes (auto: off; measured slower at these sizes)
    tf32: Switch = AUTO  # TF32 matmuls and convolutions (auto: on with CUDA; no effect on CPU)
    channels_last: Switch = AUTO  # NHWC memory format of image nets and batches (auto: on with CUDA; 4-D only)
    compile: bool = False  # torch.compile every network (off by default: minutes of compile time per process)
    # a configuration's seeds as one batched model in one process (genbench.train.members): auto = where the family
    # and settings allow it (every family, vectors and images; not the Dirac-GAN); false: each seed its own run
    batched_seeds: Switch = AUTO

    def __post_init__(self) -> None:
        _check_positive(self, "steps", "batch_size", "log_every", "diverge_loss", "threads")
        _check_budget(self)
        for key in ("collapse_evals", "checkpoint_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"must be an integer >= 0, got {value!r}", key=key, fix="0 turns it off")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}", key="device", fix=f"valid: {', '.join(DEVICES)}")
        for key in ("bf16", "tf32", "channels_last", "batched_seeds"):
            setattr(self, key, switch(getattr(self, key), key))


@dataclass
class EvalConfig:
    """How often, on how many samples and in which feature space quality is measured during training."""

    every: int = 500  # steps between evaluations (and the last step)
    # evaluations spread evenly over the run's budget instead (0: every `every` steps); under a device-second or
    # FLOP budget 0 means 10
    count: int = 0
    n_samples: int = 2500  # the standard toy-GAN mode protocol uses 2,500 samples
    # images: classifier on digits, else Inception if its weights file is present, else 'learned' (a contrastive
    # network trained once on the data's training split, genbench.metrics.learned); 'pixels': raw pixels; or a
    # plug-in's extractor (docs/plugins.md)
    features: str = "auto"
    inception_weights: str = ""  # FID Inception weights file; '' = $GENBENCH_INCEPTION_WEIGHTS, else the cache copy

    def __post_init__(self) -> None:
        _check_positive(self, "every", "n_samples")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ConfigError(
                f"must be an integer >= 0, got {self.count!r}", key="count", fix="0: every eval.every steps"
            )
        if self.features not in BUILT_IN and self.features not in EXTRACTORS:  # plug-ins: genbench.plugins
            raise ConfigError(
                EXTRACTORS.broken.get(self.features, f"unknown feature extractor {self.features!r}"),
                key="features",
                fix=suggest(self.features, feature_names()),
            )


@dataclass
class RunConfig:
    """One run: the family, its seed, the shared sections and the family's own model and optim sections."""

    family: str
    seed: int
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    model: Any  # the family's config dataclass, flat keys '<family>.*'
    optim: Any  # the family's optimiser dataclass, flat keys 'optim.*'


def _check_budget(train: TrainConfig) -> None:
    """At most one compute budget, each >= 0 and finite."""
    for key in ("device_s", "flops"):
        value = getattr(train, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
            raise ConfigError(f"must be a number >= 0, got {value!r}", key=key, fix="0: train for train.steps steps")
        setattr(train, key, float(value))
    if train.device_s and train.flops:
        raise ConfigError(
            "train.device_s and train.flops are both set",
            key="flops",
            fix="give the run one budget: set the other to 0",
        )


def _check_positive(obj: Any, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) > 0:
            raise ConfigError(f"must be > 0, got {getattr(obj, name)!r}", key=name, fix="use a positive value")


def check_optimiser(
    opt: Any,
    lrs: tuple[str, ...] = ("lr",),
    betas: tuple[str, ...] = ("beta1", "beta2"),
    non_negative: tuple[str, ...] = ("grad_clip",),
) -> None:
    """The checks every family's optimiser section shares: learning rates > 0, Adam betas in [0, 1), the rest >= 0."""
    for key in lrs:
        if not getattr(opt, key) > 0:
            raise ConfigError(f"must be > 0, got {getattr(opt, key)}", key=key, fix="a learning rate like 1e-3")
    for key in betas:
        if not 0.0 <= getattr(opt, key) < 1.0:
            raise ConfigError(
                f"must be in [0, 1), got {getattr(opt, key)}", key=key, fix="Adam's default is 0.9 / 0.999"
            )
    for key in non_negative:
        if getattr(opt, key) < 0:
            raise ConfigError(f"must be >= 0, got {getattr(opt, key)}", key=key, fix="0 turns it off")
