"""`genbench bench`: cases that time the platform against the cheapest way to do the same work, as ratios."""
