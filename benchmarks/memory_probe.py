"""Peak resident memory of one phase of a default run on 32x32 RGB images (docs/measurements/2026-11-30-memory.md).

    python benchmarks/memory_probe.py shapes DIR                    # 600 32x32 RGB PNGs of coloured shapes
    python benchmarks/memory_probe.py FAMILY PHASE DIR [KEY=VALUE]  # one phase, in this fresh process

PHASE: train (two default training steps), sample (eval.n_samples draws; the autoregressive model's largest
pass only, its last pixel's, of the C x H x W sequential ones), nll (the likelihood on the test split), score
(features and metrics of eval.n_samples images). Prints the process's peak resident set (ru_maxrss) before
and after the phase; an allocation refused under `ulimit -v` is reported as FAILED, not raised.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def shapes(out: Path, n: int = 600, size: int = 32) -> None:
    """n RGB images of 1-3 ellipses, rectangles or triangles in random colours on a random background."""
    from PIL import Image, ImageDraw

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(rng.integers(1, 4)):
            x0, y0 = (int(v) for v in rng.integers(0, size - 12, 2))
            x1, y1 = x0 + int(rng.integers(6, 13)), y0 + int(rng.integers(6, 13))
            colour, kind = tuple(int(v) for v in rng.integers(0, 256, 3)), rng.integers(3)
            if kind == 0:
                draw.ellipse([x0, y0, x1, y1], fill=colour)
            elif kind == 1:
                draw.rectangle([x0, y0, x1, y1], fill=colour)
            else:
                draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
        img.save(out / f"{i:03d}.png")


def peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB


def phase(family: Any, data: Any, cfg: Any, name: str) -> None:
    import torch

    from genbench.train.evaluate import Evaluator, likelihood

    n = cfg.eval.n_samples
    if name == "train":
        for _ in range(2):
            family.train_step(data.train[: cfg.train.batch_size * family.batches_per_step])
    elif name == "sample" and cfg.family == "autoregressive":  # the last pass: the largest input and output
        with torch.no_grad():
            height, width = data.shape[1:]
            family._head(
                torch.cat(
                    [
                        family._pixel_params(part, height - 1, width - 1)
                        for part in torch.zeros(n, *data.shape).split(family.chunk)
                    ]
                )
            )
    elif name == "sample":
        family.sample(n)
    elif name == "score":
        Evaluator(data, n, cfg.eval.features)._images(torch.rand(n, *data.shape))
    elif name == "nll":
        likelihood(family, data)
    else:
        raise SystemExit(f"unknown phase {name!r}: train, sample, score or nll")


def main(argv: list[str]) -> None:
    if argv[0] == "shapes":
        shapes(Path(argv[1]))
        return
    import torch

    from genbench.config import from_flat
    from genbench.data import load_dataset
    from genbench.families import FAMILIES

    name, which, folder = argv[:3]
    extra = {key: yaml.safe_load(value) for key, value in (kv.split("=", 1) for kv in argv[3:])}
    cfg = from_flat({"family": name, "data.name": "files", "data.path": folder, **extra})
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_dataset(cfg.data)
    family = FAMILIES.get(name).build(cfg, data)
    before, start = peak_mib(), time.perf_counter()
    try:
        phase(family, data, cfg, which)
        status = "ok"
    except (RuntimeError, MemoryError) as exc:  # an allocation beyond the address-space cap
        status = f"FAILED {type(exc).__name__}: {str(exc)[:160]}"
    print(
        f"{name} {which}: before the phase {before} MiB, peak {peak_mib()} MiB, "
        f"{time.perf_counter() - start:.1f} s, {status}",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
