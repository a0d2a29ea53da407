"""FID parity with pytorch-fid itself: the same images through both Inception ports, and both Frechet distances.

CI cannot run this (pytorch-fid needs torchvision, whose PyPI build does not load with the CPU torch used
there; see docs/metrics.md). On a machine with `pip install pytorch-fid torchvision` matching its torch and
the weights file pt_inception-2015-12-05-6726825d.pth:

    python scripts/parity_pytorch_fid.py --weights PATH [--n 64] [--device cuda]

It prints the largest difference of the 2048-d pool3 features over the same random images (grey and RGB)
and the FID of two image sets by genbench and by pytorch-fid (`calculate_frechet_distance`), and exits 1
when the features differ by more than 1e-4 or the distances by more than 1e-3 relative.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from genbench.metrics.features import frechet_distance
from genbench.metrics.inception import FID_WEIGHTS_FILE, load_fid_inception, preprocess


def pytorch_fid_net(weights: Path, device: str) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (pool3 block, its FID defaults), reading the weights from a private torch hub
    folder that holds the given file, so that nothing is downloaded."""
    hub = Path(tempfile.mkdtemp(prefix="parity-hub-"))
    (hub / "checkpoints").mkdir()
    (hub / "checkpoints" / FID_WEIGHTS_FILE).symlink_to(weights.resolve())
    os.environ["TORCH_HOME"] = str(hub)
    torch.hub.set_dir(str(hub))
    from pytorch_fid.inception import InceptionV3

    return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()


def both_features(images: torch.Tensor, weights: Path, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2048) pool3 features of RGB images (N, 3, H, W) in [0, 1] by genbench and by pytorch-fid."""
    ours, theirs = load_fid_inception(weights).to(device), pytorch_fid_net(weights, device)
    with torch.no_grad():
        x = images.to(device)
        return ours.pool3(preprocess(x)).cpu().double(), theirs(x)[0].flatten(1).cpu().double()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help=f"path of {FID_WEIGHTS_FILE}")
    parser.add_argument("--n", type=int, default=64, help="images per set")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    grey = torch.rand(args.n, 1, 28, 28, generator=gen).repeat(1, 3, 1, 1)  # genbench repeats grey channels
    rgb = torch.rand(args.n, 3, 32, 32, generator=gen) ** 2  # a second, darker set
    ours_a, theirs_a = both_features(grey, args.weights, args.device)
    ours_b, theirs_b = both_features(rgb, args.weights, args.device)
    from pytorch_fid.fid_score import calculate_frechet_distance

    feature_gap = max(float((ours_a - theirs_a).abs().max()), float((ours_b - theirs_b).abs().max()))
    fd_ours = frechet_distance(ours_a, ours_b)
    fd_theirs = float(
        calculate_frechet_distance(
            theirs_a.mean(0).numpy(), theirs_a.T.cov().numpy(), theirs_b.mean(0).numpy(), theirs_b.T.cov().numpy()
        )
    )
    print(f"largest pool3 feature difference: {feature_gap:.3g}")
    print(f"FID genbench {fd_ours:.6g}, pytorch-fid {fd_theirs:.6g} ({args.n} images per set)")
    return 0 if feature_gap <= 1e-4 and abs(fd_ours - fd_theirs) <= 1e-3 * abs(fd_theirs) else 1


if __name__ == "__main__":
    sys.exit(main())
