"""Data layer: audio I/O and STFT, MOTChallenge I/O, synthetic generators and datasets."""
