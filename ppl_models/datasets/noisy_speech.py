"""Noisy speech sets for enhancement, from real clean speech and real noise (``../shared/data`` layout).

* ``split="test"``: the LibriSpeech ``test-other`` utterances (speakers the ``rvae-speech`` prior never heard),
  each mixed with one recording of a *test* noise kind, the kinds and the SNRs taken in turn (utterance i:
  kind i mod K, SNR (i // K + i mod K) mod S, so every kind meets every SNR): ``(-5, 0, 5)`` is like
  WSJ0-QUT, ``(2.5, 7.5, 12.5, 17.5)`` like VoiceBank-DEMAND.
* ``split="train"``: the ``train-clean-100`` utterances mixed with a random *training* noise recording at a
  random one of the SNRs — the noisy corpus of U-ND and the validation set for choosing settings; its clean
  speech is only kept for scoring, never for training. Most of its speakers trained the shipped speech priors.
* ``split="validation"``: the same with the *validation speakers* of the speech priors' corpora
  (``PRIOR_CORPORA`` split by :func:`~ppl_models.data.speakers.split_by_speaker`: voices no shipped prior trained
  on, none of them a test speaker), in a seeded random order: a validation set as new to the prior as the test.

Noises (``NOISES``): training and test recordings never overlap. UrbanSound8K is split by fold (folds 1 and 2
train, fold 10 test; a fold never shares a source recording with another). The test kinds are labelled
(``KIND_STATIONARITY``) by how much their 250-4000 Hz frame energy moves: stationary (engine idling, air
conditioner: standard deviation over frames ~1 dB, median over the test clips) or non-stationary (street music
4.6 dB, children playing 5.3, exercise bike 7.7 — pedal strokes and squeaks —, dishes 8.0, thunderstorm 4-10).
The SNR is over the whole utterance (``mix_at_snr``); a noise clip shorter than the utterance (the 4 s
UrbanSound8K clips) is looped from a random offset.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppl_models.data.audio import list_audio_files, load_audio, without_dc
from ppl_models.data.speakers import speaker_of, split_by_speaker
from ppl_models.datasets.speech_activity import SPEAKER_DIRS, SPEECH_DIR
from ppl_models.data.synthetic.mixtures import mix_at_snr

PRIOR_CORPORA = ("speech_librispeech_mini/train-clean-5", "speech_speechocean762/flac",
                 "speech_librispeech_resemblyzer/train-clean-100", "pyroomacoustics_samples/speech")
SNR_SETS = {"qut": (-5.0, 0.0, 5.0), "dmd": (2.5, 7.5, 12.5, 17.5)}
URBAN = "noise_urbansound8k"
URBAN_FOLDS = {"train": ("fold1", "fold2"), "test": ("fold10",)}
URBAN_TEST_KINDS = ("engine_idling", "air_conditioner", "street_music", "children_playing")
NOISES = {  # split -> kind -> files under the data root (UrbanSound8K kinds are read from its inventory)
    "train": {"dog": ["noise_esc50_speechbrain/1-100032-A-0.wav"],
              "car horn": ["noise_esc50_speechbrain/2-100648-A-43.wav"],
              "thunderstorm": ["noise_esc50_speechbrain/3-103051-C-19.wav"]},
    "test": {"exercise bike": ["pyroomacoustics_samples/noise/exercise_bike.wav"],
             "dishes": ["pyroomacoustics_samples/noise/doing_the_dishes.wav"],
             "thunderstorm": ["noise_esc50_speechbrain/4-156993-A-19.wav",
                              "noise_esc50_speechbrain/5-156999-C-19.wav"]},
}
KIND_STATIONARITY = {"engine_idling": "stationary", "air_conditioner": "stationary", "exercise bike": "non-stationary",
                     "street_music": "non-stationary", "children_playing": "non-stationary",
                     "dishes": "non-stationary", "thunderstorm": "non-stationary"}


@dataclass
class NoisyUtterance:
    name: str  # utterance id + noise + SNR, usable as a file stem
    clean: np.ndarray
    noisy: np.ndarray
    snr_db: float
    noise_file: str
    noise_kind: str = ""
    speaker: str = ""


def noise_kinds(data_root: str | os.PathLike, split: str) -> dict[str, list[str]]:
    """kind -> noise files (relative to ``data_root``) of ``split``: ``NOISES`` plus the split's UrbanSound8K
    folds (train: every class of folds 1-2; test: the four ``URBAN_TEST_KINDS`` of fold 10)."""
    root = Path(data_root)
    kinds = {k: list(v) for k, v in NOISES[split].items()}
    inventory = root / URBAN / "inventory.csv"
    if not inventory.is_file():
        raise FileNotFoundError(f"{inventory}: no such file (the UrbanSound8K noises, under data_root={root})")
    with open(inventory, newline="") as f:
        for row in csv.DictReader(f):
            if row["fold"] in URBAN_FOLDS[split] and (split == "train" or row["class"] in URBAN_TEST_KINDS):
                kinds.setdefault(row["class"], []).append(f"{URBAN}/{row['file']}")
    if split == "test":
        kinds = {k: kinds[k] for k in (*URBAN_TEST_KINDS, *NOISES["test"])}  # a fixed order: kind i mod K
    for files in kinds.values():
        for f in files:
            if not (root / f).is_file():
                raise FileNotFoundError(f"noise file not found: {root / f} (under data_root={root})")
    return kinds


def noisy_speech_set(data_root: str | os.PathLike, split: str = "test", snrs=SNR_SETS["qut"],
                     num_utterances: int | None = None, seed: int = 0,
                     kinds: list[str] | None = None) -> list[NoisyUtterance]:
    """Mix the clean utterances of ``split`` with that split's real noises; see the module docstring.
    ``kinds``: only these noise kinds of the split (e.g. a validation set of the test's kinds, other recordings)."""
    if split not in (*SPEAKER_DIRS, "validation"):
        raise ValueError(f"split must be one of {', '.join(SPEAKER_DIRS)}, validation; got {split!r}")
    snrs = [float(s) for s in snrs]
    if not snrs:
        raise ValueError("need at least one SNR")
    root = Path(data_root)
    if split == "validation":
        pool = split_by_speaker([f for corpus in PRIOR_CORPORA for f in list_audio_files(root / corpus)])[1]
        files = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))][:num_utterances]
    else:
        speech_dir = root / SPEECH_DIR / SPEAKER_DIRS[split]
        if not speech_dir.is_dir():
            raise FileNotFoundError(f"{speech_dir}: no such folder (data_root={root})")
        files = list_audio_files(speech_dir)[:num_utterances]
    noises = noise_kinds(root, "test" if split == "test" else "train")
    if kinds is not None:
        unknown = sorted(set(kinds) - set(noises))
        if unknown:
            raise ValueError(f"noise kinds {unknown} are not in the {split} split (it has {', '.join(noises)})")
        noises = {k: noises[k] for k in kinds}
    names = list(noises)
    rng = np.random.default_rng(seed)
    cache: dict[str, np.ndarray] = {}
    out = []
    for i, path in enumerate(files):
        clean = without_dc(load_audio(path))  # 4 of the 40 training utterances hold a DC offset (35-97 % of
        if split == "test":                   # their energy) that no enhancer should keep; the test ones' is < 0.2 %
            kind = names[i % len(names)]
            snr = snrs[(i // len(names) + i % len(names)) % len(snrs)]
        else:
            kind = names[int(rng.integers(len(names)))]
            snr = float(rng.choice(snrs))
        noise_file = noises[kind][int(rng.integers(len(noises[kind])))]
        if noise_file not in cache:
            cache[noise_file] = load_audio(root / noise_file)
        noisy, _ = mix_at_snr(clean, _stretch(rng, cache[noise_file], len(clean), noise_file), snr)
        out.append(NoisyUtterance(f"{path.stem}_{Path(noise_file).stem}_{snr:+g}dB", clean,
                                  noisy.astype(np.float32), snr, noise_file, kind, speaker_of(path)))
    return out


def _stretch(rng: np.random.Generator, noise: np.ndarray, n: int, name: str) -> np.ndarray:
    """n samples of ``noise`` from a random offset (looped), redrawn while the stretch is 30 dB below the
    recording's mean power (the silent gaps of sparse clips: a dog bark, a gun shot)."""
    power = np.mean(noise.astype(np.float64) ** 2)
    if power == 0:
        raise ValueError(f"{name}: the noise recording is silent")
    for _ in range(100):
        piece = np.take(noise, np.arange(n) + rng.integers(len(noise)), mode="wrap")
        if np.mean(piece.astype(np.float64) ** 2) >= 1e-3 * power:
            return piece
    raise ValueError(f"{name}: no stretch of {n} samples within 30 dB of the recording's mean power")
