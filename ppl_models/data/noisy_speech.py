"""Noisy speech sets for enhancement, from real clean speech and real noise (``../shared/data`` layout).

* ``split="test"``: the LibriSpeech ``test-other`` utterances (speakers the ``rvae-speech`` prior never heard),
  each mixed with a stretch of one of the *test* noises (exercise bike, two ESC-50 thunderstorms) at the SNRs
  given, taken in turn: ``(-5, 0, 5)`` is like WSJ0-QUT, ``(2.5, 7.5, 12.5, 17.5)`` like VoiceBank-DEMAND.
* ``split="train"``: the ``train-clean-100`` utterances mixed with the *training* noises (dishes, dog, car horn,
  a third thunderstorm), never heard at test time — the noisy corpus of U-ND, whose clean speech is only kept
  for scoring, never for training.

The noise files are ``speech_activity.NOISE_FILES``; the SNR is over the whole utterance (``mix_at_snr``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppl_models.data.audio import list_audio_files, load_audio
from ppl_models.data.speech_activity import SPEAKER_DIRS, SPEECH_DIR, audible_stretch, noise_recordings
from ppl_models.data.synthetic.mixtures import mix_at_snr

SNR_SETS = {"qut": (-5.0, 0.0, 5.0), "dmd": (2.5, 7.5, 12.5, 17.5)}


@dataclass
class NoisyUtterance:
    name: str  # utterance id + noise + SNR, usable as a file stem
    clean: np.ndarray
    noisy: np.ndarray
    snr_db: float
    noise_file: str


def noisy_speech_set(data_root: str | os.PathLike, split: str = "test", snrs=SNR_SETS["qut"],
                     num_utterances: int | None = None, seed: int = 0) -> list[NoisyUtterance]:
    """Mix the clean utterances of ``split`` with that split's real noises; see the module docstring."""
    if split not in SPEAKER_DIRS:
        raise ValueError(f"split must be one of {', '.join(SPEAKER_DIRS)}, got {split!r}")
    snrs = [float(s) for s in snrs]
    if not snrs:
        raise ValueError("need at least one SNR")
    root = Path(data_root)
    speech_dir = root / SPEECH_DIR / SPEAKER_DIRS[split]
    if not speech_dir.is_dir():
        raise FileNotFoundError(f"{speech_dir}: no such folder (data_root={root})")
    files = list_audio_files(speech_dir)[:num_utterances]
    names, noises = noise_recordings(root, split, "unseen-environment")
    rng = np.random.default_rng(seed)
    out = []
    for i, path in enumerate(files):
        clean = load_audio(path)
        k = int(rng.integers(len(noises)))
        snr = snrs[i % len(snrs)] if split == "test" else float(rng.choice(snrs))
        noisy, _ = mix_at_snr(clean, audible_stretch(rng, noises[k], len(clean)), snr)
        noise_name = Path(names[k]).stem
        out.append(NoisyUtterance(f"{path.stem}_{noise_name}_{snr:+g}dB", clean, noisy.astype(np.float32), snr,
                                  names[k]))
    return out
