"""Semi-synthetic audio-visual speech activity detection (SAD): is someone speaking in frame t?

Three synchronised sensors at 62.5 frames/s (16 kHz, hop 256, window 1024): ``audio`` (D=64), ``image``
(D=48) and ``flow`` (D=48), and y_t in {0, 1}.

What is REAL: the speech (LibriSpeech utterances in ``speech_librispeech_resemblyzer``: train split = its 40
train-clean-100 speakers, one utterance each; test split = its 10 held-out test-other speakers, five each)
and the noises (``pyroomacoustics_samples/noise`` and ``noise_esc50_speechbrain``, see ``NOISE_FILES``).
What is GENERATED: the pauses, the mixing, the label smoothing, and the whole video (``mouth_video.py``: the
mouth image drawn from the clean-speech envelope, its flow, its non-speech motion and its occlusions).

Streams. Each utterance is scaled so that its speech frames have RMS ``SPEECH_RMS`` and cut in the middle of
its own pauses of >= 0.2 s; one speaker's pieces are chained in reading order with an extra pause of 0.3-1.5 s
before every utterance and before half of the other pieces. A pause is the utterance's room tone (Gaussian
noise shaped to the mean spectrum of its quietest frames, ~10 dB below its label threshold), not digital
silence. A stream is cut into sequences of ``frames`` frames (T * 256 samples) from a random offset. Train
utterances are used ``repeats`` = 2 times (other pauses, offsets, noises and videos), test ones once: about
360 train and 140 test sequences of 200 frames.

Labels (from the CLEAN speech). E_t = 10 log10 of the frame's power in 250-4000 Hz; per utterance,
threshold = max(P99(E) - 35 dB, P5(E) + 10 dB) (recordings with a high noise floor get a higher threshold).
y_t = [E_t > threshold], then a 5-frame (80 ms) median filter removes 1-2-frame blips.

Corruption (``noise``), mixed per sequence with ``mix_at_snr`` (SNR over all the sequence's samples):
    "environment"  a real noise at -5 dB from a random one of the seven recordings of ``NOISE_FILES`` (dishes,
                   exercise bike, dog, car horn, three thunderstorms), from a random offset, wrapping around
                   inside the split's part of the recording: train draws from its first 70 %, test from the
                   last 30 % (``TRAIN_SHARE``), so the test noise is unheard but of a kind seen in training
                   (the dog clip is silent in its last 30 %: train only)
    "unseen-environment"  the same, but whole recordings of DIFFERENT kinds per split (dishes, dog, car horn,
                   thunderstorm 3 for train; exercise bike, thunderstorms 4 and 5 for test): a harder condition
    "babble"       the sum of three other speakers of the same split (each at the common speech level,
                   continuous speech from a random offset) at 0 dB: the "3P" condition
    "clean"        none
Noise augmentation (``augment_noise=True``, the default): with "environment" and "unseen-environment", half the
TRAINING sequences (at random) draw their noise instead from the 149 UrbanSound8K clips of ``URBAN`` (10 urban
kinds: air conditioner, car horn, children, dog, drilling, engine, gun shot, jackhammer, siren, street music),
so the audio path and the gate meet many noise kinds, not four to seven recordings. None of them is a test
recording or kind (test: exercise bike, thunderstorms and, for "environment", the unheard stretches of the
training recordings); ``augment_noise=False`` builds the training split of the earlier sets.
``meta["corrupted_audio"]`` marks the frames whose local SNR (250-4000 Hz) is below 0 dB.

Audio features (D = 64): 32 log mel-band energies (triangular filters, HTK mel, 50-8000 Hz) of the corrupted
audio in dB, standardised with the fixed constants ``FEATURE_MEAN_DB`` / ``FEATURE_STD_DB`` (measured once on
the train split with environment noise), then the same 32 minus their causal running mean (an exponential
average over the past ``RUNNING_MEAN_FRAMES`` ~ 1 s, ``relative_to_running_mean``): each band's level relative
to its recent past, which a stationary noise floor or a change of recording level does not move (causal mean
normalisation, standard in robust speech detection). No statistic depends on the test data or future frames.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import median_filter
from scipy.signal import lfilter

from ppl_models.data.audio import SAMPLE_RATE, list_audio_files, load_audio
from ppl_models.data.fusion_files import FusionData, check_fusion
from ppl_models.datasets.mouth_video import mouth_video
from ppl_models.data.stft import HOP_LENGTH, N_FFT, istft, mel_filterbank, power_spectrogram
from ppl_models.data.synthetic.mixtures import mix_at_snr

SPEECH_DIR = "speech_librispeech_resemblyzer"
SPEAKER_DIRS = {"train": "train-clean-100", "test": "test-other"}
NOISE_FILES = {  # (folder, file); "unseen-environment" gives each split its own files
    "train": [("pyroomacoustics_samples/noise", "doing_the_dishes.wav"),
              ("noise_esc50_speechbrain", "1-100032-A-0.wav"),  # dog, ESC-50 fold 1
              ("noise_esc50_speechbrain", "2-100648-A-43.wav"),  # car horn, fold 2
              ("noise_esc50_speechbrain", "3-103051-C-19.wav")],  # thunderstorm, fold 3
    "test": [("pyroomacoustics_samples/noise", "exercise_bike.wav"),
             ("noise_esc50_speechbrain", "4-156993-A-19.wav"),  # thunderstorm, fold 4
             ("noise_esc50_speechbrain", "5-156999-C-19.wav")],  # thunderstorm, fold 5
}
URBAN = "noise_urbansound8k"  # training-only noise augmentation: every clip of its inventory.csv
URBAN_SHARE = 0.5  # of the training sequences
TRAIN_SHARE = 0.7  # "environment": train noise from the first 70 % of each recording, test from the rest
SNR_DB = {"environment": -5.0, "unseen-environment": -5.0, "babble": 0.0, "clean": None}
SPEECH_RMS = 0.05
BAND_HZ = (250.0, 4000.0)
PEAK_RANGE_DB, FLOOR_MARGIN_DB = 35.0, 10.0
PAUSE_S = (0.3, 1.5)
N_MELS = 32
FEATURE_MEAN_DB, FEATURE_STD_DB = 1.6, 16.0  # train split, noise="environment", seed 0
RUNNING_MEAN_FRAMES = 60  # time constant of the running mean of relative_to_running_mean: ~1 s at 62.5 frames/s


def _band(n_fft: int = N_FFT) -> np.ndarray:
    """(F,) bool: the STFT bins in BAND_HZ."""
    freqs = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    return (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])


def frame_energies(x: np.ndarray, frames: int | None = None, mel: bool = False, batch: int = 64) -> np.ndarray:
    """(N, L) signals -> energy in 250-4000 Hz per frame (N, T) in dB, or with ``mel`` the 32 mel-band energies
    (N, T, 32) in dB; frame t is centred on sample t * 256. ``frames`` keeps the first T frames."""
    weights = torch.from_numpy(mel_filterbank(N_MELS) if mel else _band()[None].astype(np.float32))  # (M, F)
    out = []
    for i in range(0, len(x), batch):
        p = power_spectrogram(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])))[..., :frames]  # (B, F, T)
        out.append((10 * torch.log10(weights @ p + 1e-10)).transpose(1, 2).numpy())  # (B, T, M)
    out = np.concatenate(out)
    return out if mel else out[..., 0]


@dataclass
class Utterance:
    """One utterance at the common speech level, with what the label rule and the pauses need."""

    audio: np.ndarray  # (L,) float32, speech frames at RMS SPEECH_RMS
    threshold_db: float  # speech / non-speech threshold on the 250-4000 Hz frame energy
    pieces: list[tuple[int, int]]  # sample ranges, cut in the middle of its pauses >= 0.2 s
    tone: np.ndarray  # (3 s,) float32 room tone: noise with the mean spectrum of its quietest frames


def relative_to_running_mean(x: np.ndarray, frames: float = RUNNING_MEAN_FRAMES) -> np.ndarray:
    """x_t - m_t along axis 1 of (N, T, D), m_t the exponential running mean of x_1..x_t with time constant
    ``frames``: m_t = (sum_s<=t a^(t-s) x_s) / (sum_s<=t a^(t-s)), a = 1 - 1/frames (the normalisation makes
    the first frames' mean unbiased rather than pulled towards 0). Causal: m_t reads no frame after t."""
    a = 1.0 - 1.0 / frames
    weighted = lfilter([1.0], [1.0, -a], x, axis=1)  # sum_s<=t a^(t-s) x_s
    weights = lfilter([1.0], [1.0, -a], np.ones(x.shape[1]))  # sum_s<=t a^(t-s)
    return (x - weighted / weights[:, None]).astype(np.float32)


def speaker_of(path: Path) -> str:
    """LibriSpeech names files ``<speaker>-<chapter>-<utterance>``."""
    return path.name.split("-")[0]


def prepare_utterance(x: np.ndarray, rng: np.random.Generator) -> Utterance:
    """Threshold, level, pause cuts and room tone of one utterance (16 kHz mono)."""
    power = power_spectrogram(torch.from_numpy(x)).numpy()  # (F, T)
    e = 10 * np.log10(power[_band()].sum(0) + 1e-10)  # (T,) as frame_energies
    floor = np.percentile(e, 5)
    thr = max(np.percentile(e, 99) - PEAK_RANGE_DB, floor + FLOOR_MARGIN_DB)
    speech = e > thr
    per_sample = speech[np.minimum((np.arange(len(x)) + HOP_LENGTH // 2) // HOP_LENGTH, len(speech) - 1)]
    gain = SPEECH_RMS / np.sqrt(np.mean(x[per_sample].astype(np.float64) ** 2))
    edges = np.flatnonzero(np.diff(np.r_[1, speech.astype(int), 1]))  # starts / ends of the silent runs
    cuts = [(a + b) // 2 * HOP_LENGTH for a, b in zip(edges[::2], edges[1::2])
            if b - a >= 13 and a > 0 and b < len(speech)]  # >= 0.2 s between two speech frames
    bounds = [0, *cuts, len(x)]
    tone = room_tone(rng, power[:, e <= floor + 3].mean(1) * gain ** 2, 3 * SAMPLE_RATE)
    return Utterance((x * gain).astype(np.float32), thr + 20 * np.log10(gain), list(zip(bounds[:-1], bounds[1:])),
                     tone)


def room_tone(rng: np.random.Generator, quiet_power: np.ndarray, n: int) -> np.ndarray:
    """(n,) Gaussian noise whose mean power spectrum is ``quiet_power`` (F,): random phases, inverse STFT."""
    shape = (len(quiet_power), n // HOP_LENGTH + 1)
    spec = np.sqrt(quiet_power)[:, None] * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    tone = istft(torch.from_numpy(spec.astype(np.complex64)), length=n)
    level = float(power_spectrogram(tone).mean())
    return (tone.numpy() * np.sqrt(quiet_power.mean() / max(level, 1e-30))).astype(np.float32)


def speaker_stream(rng: np.random.Generator, utts: list[Utterance]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One speaker's utterances chained with random pauses: (audio (L,), part starts (K,), thresholds (K,))."""
    parts, starts, thresholds = [], [0], []

    def add(x: np.ndarray, thr: float) -> None:
        parts.append(x)
        thresholds.append(thr)
        starts.append(starts[-1] + len(x))

    def pause(u: Utterance) -> None:
        n = int(rng.uniform(*PAUSE_S) * SAMPLE_RATE)
        a = int(rng.integers(0, len(u.tone) - n + 1))
        add(u.tone[a:a + n], u.threshold_db)

    for u in utts:
        for j, (a, b) in enumerate(u.pieces):
            if j == 0 or rng.random() < 0.5:
                pause(u)
            add(u.audio[a:b], u.threshold_db)
    pause(utts[-1])
    return np.concatenate(parts), np.array(starts[:-1]), np.array(thresholds)


def clean_sequences(rng: np.random.Generator, by_speaker: dict[str, list[Utterance]], frames: int, repeats: int):
    """Cut every speaker's streams into sequences: (audio (N, T * 256), thresholds (N, T), speakers (N,))."""
    length = frames * HOP_LENGTH
    audio, thr, who = [], [], []
    for _ in range(repeats):
        for spk, utts in sorted(by_speaker.items()):
            stream, starts, thresholds = speaker_stream(rng, utts)
            n = len(stream) // length
            offset = int(rng.integers(0, len(stream) - n * length + 1))
            for a in offset + length * np.arange(n):
                audio.append(stream[a:a + length])
                thr.append(thresholds[np.searchsorted(starts, a + np.arange(frames) * HOP_LENGTH, "right") - 1])
                who.append(spk)
    return np.stack(audio), np.stack(thr).astype(np.float32), np.array(who)


def audible_stretch(rng: np.random.Generator, noise: np.ndarray, n: int) -> np.ndarray:
    """n samples of ``noise`` from a random offset, redrawn while the stretch is silent (sparse clips)."""
    for _ in range(100):
        piece = _take(rng, noise, n)
        if np.mean(piece.astype(np.float64) ** 2) >= 1e-6:
            return piece
    raise ValueError("a noise recording is silent everywhere")


def _take(rng: np.random.Generator, x: np.ndarray, n: int) -> np.ndarray:
    """n samples of ``x`` from a random offset, wrapping around."""
    return np.take(x, np.arange(n) + rng.integers(len(x)), mode="wrap")


def noise_recordings(root: Path, split: str, noise: str) -> tuple[list[str], list[np.ndarray]]:
    """The real noise a split draws from: (file names under ``root``, the audio of the split's part of each)."""
    pairs = NOISE_FILES[split] if noise == "unseen-environment" else NOISE_FILES["train"] + NOISE_FILES["test"]
    files = [f"{folder}/{name}" for folder, name in pairs]
    for f in files:
        if not (root / f).is_file():
            raise FileNotFoundError(f"noise file not found: {root / f} (under data_root={root})")
    banks = [load_audio(root / f) for f in files]
    if noise == "environment":  # disjoint stretches of every recording
        banks = [b[:int(TRAIN_SHARE * len(b))] if split == "train" else b[int(TRAIN_SHARE * len(b)):] for b in banks]
        audible = [k for k, b in enumerate(banks) if np.mean(b.astype(np.float64) ** 2) > 1e-6]  # the dog clip's
        banks, files = [banks[k] for k in audible], [files[k] for k in audible]  # last 1.5 s are silence
    return files, banks


def urban_clips(root: Path) -> tuple[list[str], list[np.ndarray]]:
    """(file names under ``root``, audio at RMS 0.1) of every UrbanSound8K clip listed in its inventory (the level
    is set again at mixing; this one only lets ``audible_stretch`` tell a quiet recording from a silent stretch)."""
    inventory = root / URBAN / "inventory.csv"
    if not inventory.is_file():
        raise FileNotFoundError(f"{inventory}: no such file (the UrbanSound8K noises for the training split's "
                                f"noise augmentation, under data_root={root}; augment_noise=False does without)")
    with open(inventory, newline="") as f:
        files = [f"{URBAN}/{row['file']}" for row in csv.DictReader(f)]
    clips = [load_audio(root / f) for f in files]
    return files, [0.1 * c / max(float(np.sqrt(np.mean(c.astype(np.float64) ** 2))), 1e-12) for c in clips]


def draw_noises(rng: np.random.Generator, root: Path, split: str, noise: str, who: np.ndarray,
                by_speaker: dict[str, list[Utterance]], length: int,
                augment: bool = False) -> tuple[np.ndarray, list[str], list[str]]:
    """Unscaled noise for each sequence: (noise (N, length), source per sequence, files of the split);
    ``augment``: half the sequences (at random) from the UrbanSound8K clips instead."""
    out = np.zeros((len(who), length), np.float32)
    if noise == "clean":
        return out, ["none"] * len(who), []
    if noise == "babble":
        voices = {spk: np.concatenate([u.audio for u in utts]) for spk, utts in by_speaker.items()}
        sources = []
        for i, spk in enumerate(who):
            talkers = rng.choice(sorted(s for s in voices if s != spk), 3, replace=False)
            out[i] = sum(_take(rng, voices[t], length) for t in talkers)
            sources.append("babble:" + "+".join(talkers))
        return out, sources, []
    files, banks = noise_recordings(root, split, noise)
    picks = rng.integers(len(banks), size=len(who))
    if augment:
        urban_files, urban_banks = urban_clips(root)
        from_urban = rng.random(len(who)) < URBAN_SHARE
        picks = np.where(from_urban, len(banks) + rng.integers(len(urban_banks), size=len(who)), picks)
        files, banks = files + urban_files, banks + urban_banks
    for i, k in enumerate(picks):
        out[i] = audible_stretch(rng, banks[k], length)
    return out, [files[k] for k in picks], files


def build_speech_activity(data_root: str | os.PathLike, split: str = "train", noise: str = "environment",
                          num_sequences: int | None = None, frames: int = 200, seed: int = 0, *,
                          repeats: int | None = None, keep_audio: bool = False,
                          augment_noise: bool = True) -> tuple[FusionData, dict]:
    """Audio-visual speech activity sequences from the real-data folder ``data_root``.

    Returns ``FusionData`` with sensors ``audio`` (N, T, 64), ``flow`` (N, T, 48), ``image`` (N, T, 48) and
    labels y (N, T), and metadata: ``corrupted_<sensor>`` (N, T) bool, ``nonspeech_motion``, ``opening``,
    ``envelope``, ``clean_energy_db``, ``threshold_db`` (N, T), ``lag``, ``speaker``, ``noise_source``,
    ``snr_db`` (N,) (NaN for clean), ``speakers`` and ``noise_files`` of the split and, with ``keep_audio``,
    ``clean_audio`` / ``noise_audio`` (N, T * 256) (the scaled noise; audio = clean + noise).
    ``repeats`` (default 2 for train, 1 for test) is how often each utterance is used; ``num_sequences`` draws
    a random subset of the sequences. ``augment_noise``: the training split's noise augmentation (module docstring).
    """
    if split not in SPEAKER_DIRS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if noise not in SNR_DB:
        raise ValueError(f"noise must be one of {sorted(SNR_DB)}, got {noise!r}")
    if frames < 8:
        raise ValueError(f"frames must be at least 8, got {frames}")
    root = Path(data_root)
    speech_dir = root / SPEECH_DIR / SPEAKER_DIRS[split]
    if not speech_dir.is_dir():
        raise FileNotFoundError(f"speech folder not found: {speech_dir} (is data_root={data_root!s} right?)")
    split_id = list(SPEAKER_DIRS).index(split)
    by_speaker: dict[str, list[Utterance]] = {}
    rng = np.random.default_rng([seed, split_id, 0])
    for path in list_audio_files(speech_dir):
        by_speaker.setdefault(speaker_of(path), []).append(prepare_utterance(load_audio(path), rng))
    clean, thr, who = clean_sequences(rng, by_speaker, frames, repeats or (2 if split == "train" else 1))
    if num_sequences is not None:
        if not 0 < num_sequences <= len(clean):
            raise ValueError(f"num_sequences={num_sequences}: the {split} split has {len(clean)} sequences "
                             f"of {frames} frames (raise repeats= for more)")
        keep = np.sort(rng.choice(len(clean), num_sequences, replace=False))
        clean, thr, who = clean[keep], thr[keep], who[keep]

    noises, sources, files = draw_noises(np.random.default_rng([seed, split_id, 1]), root, split, noise, who,
                                         by_speaker, clean.shape[1],
                                         augment=augment_noise and split == "train" and noise.endswith("environment"))
    snr = np.full(len(clean), np.nan)
    if SNR_DB[noise] is not None:
        for i in range(len(clean)):
            noises[i] = mix_at_snr(clean[i], noises[i], SNR_DB[noise])[1]
        snr = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2, 1) / np.sum(noises.astype(np.float64) ** 2, 1))

    # Frames: features of the corrupted audio; labels and envelope of the clean speech.
    mel_db = frame_energies(clean + noises, frames, mel=True)  # (N, T, 32)
    energy = frame_energies(clean, frames)  # (N, T)
    y = median_filter((energy > thr).astype(np.float32), size=(1, 5), mode="nearest")
    env = np.clip((energy - thr) / 25.0, 0, 1)  # 0 at the threshold, 1 at 25 dB above
    env = np.apply_along_axis(lambda e: np.convolve(e, np.ones(3) / 3, mode="same"), 1, env).astype(np.float32)
    corrupted_audio = np.zeros(y.shape, bool) if SNR_DB[noise] is None else energy < frame_energies(noises, frames)
    video = mouth_video(np.random.default_rng([seed, split_id, 2]), env)

    mel = (mel_db - FEATURE_MEAN_DB) / FEATURE_STD_DB
    audio = np.concatenate([mel, relative_to_running_mean(mel)], -1).astype(np.float32)
    sensors = {"audio": audio, "image": video["image"], "flow": video["flow"]}
    speaker_index = np.searchsorted(sorted(by_speaker), who)  # groups: held-out splits keep a speaker whole
    data = check_fusion(FusionData(sensors, y, groups=speaker_index), f"speech activity {split}/{noise}")
    meta = {"corrupted_audio": corrupted_audio, **{k: v for k, v in video.items() if k not in sensors},
            "envelope": env, "clean_energy_db": energy.astype(np.float32), "threshold_db": thr, "speaker": who,
            "noise_source": np.array(sources), "snr_db": snr, "speakers": sorted(by_speaker), "noise_files": files}
    if keep_audio:
        meta.update(clean_audio=clean, noise_audio=noises)
    return data, meta
