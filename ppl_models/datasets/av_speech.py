"""Semi-synthetic audio-visual speech for imputation: two synchronised sensors whose common cause is speech.

    audio (D = 32)   REAL speech: log mel-band energies of clean LibriSpeech utterances (the speech-activity
                     data's ``audio`` sensor with ``noise="clean"``, standardised with its fixed constants)
    mouth (D = 1)    GENERATED: the mouth opening of ``mouth_video.mouth_opening``, drawn from the speech
                     envelope with a lag of 2-4 frames, a per-sequence gain, AR(1) jitter and non-speech
                     motion (chewing, smiling); frames under a camera occlusion (0-3 segments of 20-30 frames
                     per sequence) are MISSING: ``mask_mouth`` = 0 there

62.5 frames/s (hop 256 at 16 kHz). The shared cause is the speech envelope (loudness in time), which both
sensors follow; what is private is the spectral shape of the voice (audio) and the jitter and non-speech motion
(mouth). Imputing the mouth from the audio needs the shared cause only; imputing the audio from the mouth can
recover its loudness, not what was said. Speakers differ between splits (train-clean-100 / test-other).
"""

from __future__ import annotations

import os

import numpy as np

from ppl_models.data.fusion_files import FusionData, check_fusion
from ppl_models.datasets.speech_activity import N_MELS, build_speech_activity


def build_av_speech(data_root: str | os.PathLike, split: str = "train", frames: int = 100, seed: int = 0,
                    num_sequences: int | None = None) -> tuple[FusionData, dict]:
    """FusionData with sensors ``audio`` (N, T, 32) and ``mouth`` (N, T, 1), ``mask_mouth`` 0 where the camera
    is occluded, and the speech-activity labels y (N, T); meta: ``envelope``, ``nonspeech_motion`` and
    ``occluded`` (N, T), ``lag`` and ``speaker`` (N,)."""
    sad, meta = build_speech_activity(data_root, split, "clean", num_sequences, frames, seed)
    occluded = meta["corrupted_image"]
    audio = sad.sensors["audio"][..., :N_MELS]  # the log-mel bands, without their running-mean-relative copy
    data = FusionData({"audio": audio, "mouth": meta["opening"][..., None].astype(np.float32)},
                      sad.y, {"audio": np.ones(sad.shape, np.float32), "mouth": (~occluded).astype(np.float32)})
    keep = {"envelope": meta["envelope"], "nonspeech_motion": meta["nonspeech_motion"], "occluded": occluded,
            "lag": meta["lag"], "speaker": meta["speaker"]}
    return check_fusion(data, f"audio-visual speech {split}"), keep
