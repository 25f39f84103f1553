"""Data layer: audio I/O and STFT, MOTChallenge I/O, the file contracts, synthetic generators.

The experiment sets built from real recordings live in :mod:`ppl_models.datasets`."""
