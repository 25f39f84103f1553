"""Seeded synthetic data, the embedded default: trajectories, speech-like audio, noise, mixtures."""

from ppl_models.data.synthetic.audio import colored_noise, music_like, speech_like
from ppl_models.data.synthetic.mixtures import mix_at_snr, synthetic_occlusion_window, synthetic_tracking_window
from ppl_models.data.synthetic.trajectories import sample_trajectories, sample_trajectory

__all__ = ["colored_noise", "music_like", "speech_like", "mix_at_snr", "synthetic_occlusion_window",
           "synthetic_tracking_window", "sample_trajectories", "sample_trajectory"]
