"""Training: the pure-torch loop and the single-run entry point shared by `genbench train` and sweep trials."""
