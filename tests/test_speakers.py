"""Speaker ids from corpus layouts, and the split of speech corpora by speaker."""

from pathlib import Path

import pytest

from ppl_models.data.audio import list_audio_files
from ppl_models.data.speakers import held_out_test_files, speaker_of, split_by_speaker
from tests.conftest import shared


@pytest.mark.parametrize("path, speaker", [
    ("data/libri/train-clean-5/3526/176653/3526-176653-0001.flac", "3526"),  # SPEAKER/CHAPTER/
    ("data/libri/test-other/3005/3005-163389-0004.flac", "3005"),  # SPEAKER/
    ("data/libri/train-clean-100/19-198-0000.flac", "19"),  # flat
    ("data/speechocean762/flac/SPEAKER0457/004570124.flac", "SPEAKER0457"),
    ("data/samples/speech/cmu_arctic_us_aew_a0001.wav", "aew"),
    ("data/samples/speech/cmu_arctic_us_axb_b0123.wav", "axb"),
    ("data/samples/speech/arctic_a0010.wav", "arctic"),
    ("data/mine/anna/take-1.wav", "anna"),
    ("data/mine/bob/1-2.wav", "bob"),  # two numbers are not a LibriSpeech name
])
def test_speaker_of_each_layout(path, speaker):
    assert speaker_of(path) == speaker


def corpora():
    """Paths only (the split reads no file): 30 LibriSpeech speakers, 12 speechocean762 ones, 3 ARCTIC ones,
    and a second LibriSpeech folder that shares 5 speakers with the first."""
    libri = [Path(f"d/libri/train-clean-5/{s}/7/{s}-7-{u:04d}.flac") for s in range(100, 130) for u in range(3)]
    ocean = [Path(f"d/ocean/flac/SPEAKER{s:04d}/{s:04d}{u:04d}.flac") for s in range(12) for u in range(5)]
    arctic = [Path(f"d/samples/speech/cmu_arctic_us_{s}_a000{u}.wav") for s in ("aew", "axb", "bdl") for u in range(2)]
    flat = [Path(f"d/libri2/train-clean-100/{s}-9-0000.flac") for s in range(125, 140)]
    return {"libri": libri, "ocean": ocean, "arctic": arctic, "flat": flat}


def test_split_keeps_speakers_whole_and_holds_out_speakers_of_every_corpus():
    files = [f for part in corpora().values() for f in part]
    parts = split_by_speaker(files, seed=3)
    assert sorted(f for part in parts for f in part) == sorted(files)
    speakers = [{speaker_of(f) for f in part} for part in parts]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    for name, corpus in corpora().items():
        for part in parts[1:]:
            assert set(corpus) & set(part), f"{name} has no held-out speaker"
    train, val, test = ({speaker_of(f) for f in part if f in set(corpora()["ocean"])} for part in parts)
    assert (len(train), len(val), len(test)) == (10, 1, 1)  # round(1.2) each
    assert len({speaker_of(f) for f in parts[2] if f in set(corpora()["arctic"])}) == 1  # 3 speakers: 1/1/1


def test_split_is_deterministic_and_a_corpus_split_does_not_depend_on_the_others():
    files = [f for part in corpora().values() for f in part]
    assert split_by_speaker(files, seed=3) == split_by_speaker(list(files), seed=3)
    assert split_by_speaker(files, seed=3) != split_by_speaker(files, seed=4)
    ocean = corpora()["ocean"]
    assert tuple([f for f in part if f in set(ocean)] for part in split_by_speaker(files)) == split_by_speaker(ocean)
    # a test part of fewer corpora never meets the training part of more (shared speakers go to the most
    # held-out part any corpus gives them)
    for seed in range(20):
        train = {speaker_of(f) for f in split_by_speaker(files, seed)[0]}
        for name in ("libri", "flat"):
            assert not train & {speaker_of(f) for f in split_by_speaker(corpora()[name], seed)[2]}


def test_a_corpus_of_fewer_than_three_speakers_all_trains():
    files = [Path(f"d/mine/{s}/{u}.wav") for s in ("anna", "bob") for u in range(4)]
    assert split_by_speaker(files) == (files, [], [])


def test_split_of_the_real_speech_folders():
    mini = list_audio_files(shared("speech_librispeech_mini", "train-clean-5"))
    parts = split_by_speaker(mini)
    speakers = [{speaker_of(f) for f in part} for part in parts]
    assert len(set().union(*speakers)) == 28 and sum(map(len, speakers)) == 28  # no speaker in two parts
    assert [len(s) for s in speakers] == [22, 3, 3]
    folders = [shared("speech_librispeech_mini", "train-clean-5"), shared("speech_speechocean762", "flac"),
               shared("speech_librispeech_resemblyzer", "train-clean-100"), shared("pyroomacoustics_samples", "speech")]
    test = held_out_test_files(folders)
    for folder in folders:  # every corpus has held-out speakers
        assert any(folder in f.parents for f in test), folder
    assert {speaker_of(f) for f in held_out_test_files(folders[:1])} <= {speaker_of(f) for f in test}


def test_the_resynthesis_benchmark_scores_the_held_out_speakers(capsys):
    import runpy

    bench = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "resynthesis.py"))
    folder = str(shared("pyroomacoustics_samples", "speech"))
    results = bench["main"](bench["parse_args"](["--held-out-of", folder, "--envelopes", "40", "--no-progress"]))
    out = capsys.readouterr().out
    assert "test 1 speakers, 3 utterances" in out and f"3 utterances from {folder}" in out
    assert set(results) == {"cepstral envelope, 40 coefficients"}
