"""The Dirac-GAN's data (Mescheder et al. 2018): every real example is the 1-D point 0."""

from __future__ import annotations

import torch

from genbench.data.base import Dataset
from genbench.data.names import DATASETS
from genbench.sections import DataConfig


@DATASETS.register("dirac", "1-D point mass at 0: the Dirac-GAN of Mescheder et al. 2018 (use with gan.arch: dirac)")
def dirac(cfg: DataConfig) -> Dataset:
    # no modes and no sigma: quality is quality.swd, which for a point mass at theta is |theta|
    return Dataset(name="dirac", train=torch.zeros(cfg.n_train, 1), test=torch.zeros(cfg.n_test, 1))
