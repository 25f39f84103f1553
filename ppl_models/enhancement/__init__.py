"""Unsupervised speech enhancement: a frozen DVAE speech prior + a deep dynamical (or NMF) noise model."""
