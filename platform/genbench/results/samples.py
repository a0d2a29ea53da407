"""Samples of a trial's final model as small files: a PNG grid for images, a .npy array for points."""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the results store and dashboards read sample files without importing torch
    import torch

GRID_MAX = 64  # images in one grid (8 x 8)
POINTS_MAX = 1000  # points kept of a vector sample
TILE_MIN_PX = 32  # small images (8x8 digits) are enlarged, pixel for pixel, so that the browser does not blur them


def encode(samples: torch.Tensor, is_image: bool) -> dict[str, str] | None:
    """{'ext': 'png' | 'npy', 'data': base64} of the finite samples; None when none is finite.

    Base64 text, because the blob travels inside a Ray Tune result to the process that writes results.
    """
    finite = samples[samples.flatten(1).isfinite().all(dim=1)]  # (n, ...)
    if len(finite) == 0:
        return None
    if is_image:
        data, ext = grid_png(finite[:GRID_MAX].float().clamp(0, 1).numpy()), "png"
    else:
        data, ext = npy_bytes(finite[:POINTS_MAX].float().numpy()), "npy"
    return {"ext": ext, "data": base64.b64encode(data).decode()}


def decode(blob: dict[str, str]) -> tuple[str, bytes]:
    """(extension, file bytes) of an encoded sample blob."""
    return blob["ext"], base64.b64decode(blob["data"])


def grid_png(images: np.ndarray) -> bytes:
    """A square-ish grid of images (N, C, H, W) in [0, 1], one grey pixel between tiles, as PNG bytes."""
    from PIL import Image

    n, c, h, w = images.shape
    scale = max(1, TILE_MIN_PX // max(h, w))
    tiles = images.repeat(scale, axis=2).repeat(scale, axis=3)  # (N, C, H*s, W*s)
    tiles = tiles[:, :3] if c >= 3 else tiles[:, :1]  # grey or RGB; extra channels are not shown
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    th, tw = tiles.shape[2] + 1, tiles.shape[3] + 1
    canvas = np.full((tiles.shape[1], rows * th + 1, cols * tw + 1), 0.5, np.float32)  # (C', H', W')
    for i, tile in enumerate(tiles):
        r, q = divmod(i, cols)
        canvas[:, 1 + r * th : (r + 1) * th, 1 + q * tw : (q + 1) * tw] = tile
    pixels = (canvas.transpose(1, 2, 0) * 255).round().astype(np.uint8)  # (H', W', C')
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


SCATTER_PX = 512  # side of a scatter plot of 2-D points
SCATTER_MARGIN_PX = 12


def scatter_png(points: np.ndarray, reference: np.ndarray | None = None) -> bytes:
    """2-D points (N, 2) as a SCATTER_PX square PNG of 3x3 dots, dark blue, over the `reference` points (M, 2) in
    light grey (the data's test split). The view spans the 1st to 99th percentile of both, padded: one far
    point of a bad model does not shrink the rest to a dot. Non-finite points are not drawn."""
    from PIL import Image, ImageDraw

    shown = [p[np.isfinite(p).all(axis=1)] for p in (points, reference) if p is not None]
    both = np.concatenate(shown) if any(len(p) for p in shown) else np.zeros((1, 2))
    low, high = np.percentile(both, 1, axis=0), np.percentile(both, 99, axis=0)
    pad = np.maximum((high - low) * 0.1, 1e-6)
    low, span = low - pad, high - low + 2 * pad  # (2,) each
    inner = SCATTER_PX - 2 * SCATTER_MARGIN_PX
    image = Image.new("RGB", (SCATTER_PX, SCATTER_PX), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, SCATTER_PX - 1, SCATTER_PX - 1], outline=(170, 170, 170))
    for layer, colour, r in ((shown[1:], (200, 200, 200), 1), (shown[:1], (31, 60, 160), 1)):
        for p in layer:
            xy = SCATTER_MARGIN_PX + (p - low) / span * inner  # (n, 2) pixels; y grows downwards in an image
            for x, y in zip(xy[:, 0], SCATTER_PX - xy[:, 1]):
                draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def npy_bytes(points: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, points, allow_pickle=False)
    return out.getvalue()


def read_points(data: bytes) -> np.ndarray:
    """The (N, D) array of a .npy sample file; never unpickles."""
    return np.load(io.BytesIO(data), allow_pickle=False)


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def pop_samples(rows: list[dict[str, Any]], key: str = "samples") -> dict[str, dict[str, str]]:
    """Take the encoded files out of result rows (they are files, not columns): {trial_id: blob}. `key`: 'samples',
    or 'model' (a kept model, genbench.train.model)."""
    return {str(r["trial_id"]): blob for r in rows if (blob := r.pop(key, None))}
