"""Discriminator penalties by name, one small file each, registered in genbench.gan.PENALTIES; every penalty is
penalty(d, real, fake) -> unweighted scalar."""
