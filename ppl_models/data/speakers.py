"""Who speaks in an utterance file, and train / validation / test parts of a speech corpus by speaker.

A prior validated or scored on utterances of its training speakers looks better than it is on new voices:
the parts here never share a speaker. The speaker comes from the usual corpus layouts (:func:`speaker_of`);
the corpus of a file is the folder that holds its speakers (LibriSpeech ``train-clean-5``, speechocean762
``flac``, ...), and each corpus sends its own fraction of speakers to validation and test, so every corpus
has held-out voices. A corpus is shuffled by a seed made of ``seed`` and its folder's name: its part of the
split does not depend on which other corpora are listed with it, nor on relative or absolute paths.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

import soundfile as sf

PARTS = ("train", "validation", "test")
_LIBRISPEECH = re.compile(r"(\d+)-\d+-\d+")  # SPEAKER-CHAPTER-UTTERANCE
_ARCTIC = re.compile(r"cmu_arctic_[a-z]+_([a-z]+)_[ab]\d+")  # pyroomacoustics' CMU ARCTIC names, e.g. _us_aew_


def _speaker_and_corpus(path) -> tuple[str, Path]:
    path = Path(path)
    if m := _LIBRISPEECH.fullmatch(path.stem):  # in SPEAKER/CHAPTER/, in SPEAKER/, or flat
        folder = next((p for p in path.parents[:2] if p.name == m[1]), None)
        return m[1], folder.parent if folder else path.parent
    if m := _ARCTIC.fullmatch(path.stem):
        return m[1], path.parent
    if re.fullmatch(r"arctic_[ab]\d+", path.stem):  # an ARCTIC utterance of an unnamed speaker
        return "arctic", path.parent
    return path.parent.name, path.parent.parent  # speechocean762 SPEAKERnnnn/, or any SPEAKER/ folder


def speaker_of(path) -> str:
    """The speaker id of an utterance file: LibriSpeech ``SPEAKER-CHAPTER-UTT.flac`` (in SPEAKER/CHAPTER/,
    in SPEAKER/ or flat), CMU ARCTIC ``cmu_arctic_us_aew_a0001.wav`` ('aew'; a bare ``arctic_a0010.wav``
    is speaker 'arctic'), otherwise the parent folder's name (speechocean762's ``SPEAKERnnnn/``)."""
    return _speaker_and_corpus(path)[0]


def _held_out(fraction: float, speakers: int) -> int:
    """How many of a corpus's speakers a part of that fraction gets: at least one from 3 speakers on."""
    n = round(fraction * speakers)
    return max(n, 1) if fraction > 0 and speakers >= 3 else n


def split_by_speaker(files, seed: int = 0, validation: float = 0.1, test: float = 0.1):
    """(train, validation, test) lists of ``files``, whole speakers to one part.

    Each corpus gives round(fraction x its speakers) to validation and to test, at least one each when it
    has 3 speakers or more. A speaker found in several corpora (LibriSpeech subsets share some) goes to the
    most held-out part any of them gives it, so a test part computed from fewer corpora is still disjoint
    from the training part of more."""
    corpora = defaultdict(set)
    for f in files:
        speaker, corpus = _speaker_and_corpus(f)
        corpora[corpus].add(speaker)
    part = defaultdict(int)  # speaker -> index in PARTS
    for corpus, speakers in corpora.items():
        speakers = sorted(speakers)
        random.Random(f"{seed}/{corpus.name}").shuffle(speakers)
        n_test, n_val = _held_out(test, len(speakers)), _held_out(validation, len(speakers))
        for i, speaker in enumerate(speakers):
            part[speaker] = max(part[speaker], 2 if i < n_test else 1 if i < n_test + n_val else 0)
    parts = ([], [], [])
    for f in files:
        parts[part[speaker_of(f)]].append(f)
    return parts


def held_out_test_files(folders, seed: int = 0) -> list[Path]:
    """The test part of :func:`split_by_speaker` over the audio files of ``folders``: speakers that
    ``train-prior --data`` with these folders never trains or validates on."""
    from ppl_models.data.audio import list_audio_files

    return split_by_speaker([f for folder in folders for f in list_audio_files(folder)], seed)[2]


def describe_split(parts) -> str:
    """'train S speakers, U utterances, M min; validation ...; test ...' for (train, validation, test)."""
    return "; ".join(f"{name} {len({speaker_of(f) for f in files})} speakers, {len(files)} utterances, "
                     f"{sum(sf.info(str(f)).duration for f in files) / 60:.1f} min"
                     for name, files in zip(PARTS, parts))
