"""A folder of utterances as fixed-length power-spectrogram segments, the training data of speech priors.

Each utterance is read at 16 kHz (mono), its mean removed (a DC offset, which some recordings hold at up to 97 %
of their energy, would otherwise shrink the speech under the peak scaling and fill the lowest bins), scaled to a
peak of 1, its leading and trailing silence trimmed
(30 dB), transformed by the STFT of :mod:`ppl_models.data.stft`, and cut into segments of ``segment_frames``
frames (50 or 100 in the papers), every ``hop_frames`` frames: non-overlapping by default; a shorter hop
gives overlapping segments, a cheap augmentation for a small corpus; ``speeds`` adds each utterance played
faster or slower (:func:`~ppl_models.data.audio.speed_perturb`), another. An item is a (T, F) float32 tensor
of |X|^2: time first, as the sequence models consume it. ``dataset.origins[i]`` says which file and frame
the i-th segment came from (the frame of the sped-up or slowed-down copy when ``speeds`` is given).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
from torch.utils.data import Dataset

from ppl_models.data.audio import list_audio_files, load_audio, peak_normalise, speed_perturb, without_dc
from ppl_models.data.stft import power_spectrogram, trim_silence


def cut_segments(power: torch.Tensor, segment_frames: int, hop_frames: int | None = None
                 ) -> list[tuple[int, torch.Tensor]]:
    """(start frame, segment) for the (segment_frames, F) pieces of a (T, F) spectrogram that start every
    ``hop_frames`` frames (default ``segment_frames``: non-overlapping)."""
    hop = hop_frames or segment_frames
    return [(s, power[s:s + segment_frames]) for s in range(0, power.shape[0] - segment_frames + 1, hop)]


def segments_of(signals, segment_frames: int, hop_frames: int | None = None, speeds=(1.0,)) -> torch.Tensor:
    """(segment_frames, F) power segments of in-memory signals (DC removed, scaled to a peak of 1), stacked;
    each signal once per factor of ``speeds``."""
    signals = [speed_perturb(without_dc(signal), a) for signal in signals for a in speeds]
    segments = [seg for signal in signals
                for _, seg in cut_segments(power_spectrogram(peak_normalise(signal)).T, segment_frames, hop_frames)]
    if not segments:
        raise ValueError(f"every signal is shorter than {segment_frames} frames")
    return torch.stack(segments)


class SpectrogramSegments(Dataset):
    """Fixed-length |STFT|^2 segments, shape (segment_frames, 513), from a folder or a list of files."""

    def __init__(self, source: str | os.PathLike | Iterable[str | os.PathLike], segment_frames: int = 50,
                 trim_db: float | None = 30.0, hop_frames: int | None = None, speeds: Iterable[float] = (1.0,)):
        if segment_frames < 1:
            raise ValueError(f"segment_frames must be >= 1, got {segment_frames}")
        if hop_frames is not None and hop_frames < 1:
            raise ValueError(f"hop_frames must be >= 1, got {hop_frames}")
        files = list_audio_files(source) if isinstance(source, (str, os.PathLike)) else [Path(f) for f in source]
        if not files:
            raise ValueError(f"{source}: no audio files (.wav, .flac, .ogg) found")
        segments, self.origins = [], []
        for path in files:
            original = without_dc(load_audio(path))
            for speed in speeds:
                signal = peak_normalise(speed_perturb(original, speed))
                if trim_db is not None:
                    signal = trim_silence(signal, trim_db)
                spectrogram = power_spectrogram(signal).T  # (T, F)
                for start, segment in cut_segments(spectrogram, segment_frames, hop_frames):
                    segments.append(segment)
                    self.origins.append((path, start))
        if not segments:
            raise ValueError(f"{source}: every utterance is shorter than {segment_frames} frames")
        self.segments = torch.stack(segments)  # (num_segments, T, F)
        self.segment_frames = segment_frames

    def __len__(self) -> int:
        return self.segments.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.segments[index]
