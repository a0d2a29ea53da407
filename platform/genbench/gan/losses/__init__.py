"""GAN losses by name, one small file each, registered in genbench.gan.GAN_LOSSES; every loss has the same two
methods on raw discriminator outputs (logits)."""
