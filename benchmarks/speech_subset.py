"""Copy a size-capped part of speech corpora's training speakers, keeping every speaker of every part.

`train-prior --data` splits each corpus by speaker (``ppl_models.data.speakers.split_by_speaker``: the shuffle
depends on the corpus's folder name and its set of speakers). This script copies, under OUT/CORPUS/..., every
(corpus, speaker) of the three parts with at least one utterance, the training speakers' utterances round-robin
until --train-mb, the validation speakers' until --validation-mb, and one utterance of each test speaker, and
checks that the copy splits into the same speakers as the originals. Use it to train on a machine that can be
sent only part of the data; the test speakers are still never trained on.

    python benchmarks/speech_subset.py OUT train-clean-5=LIBRISPEECH_MINI/train-clean-5 flac=SPEECHOCEAN/flac \
        train-clean-100=RESEMBLYZER/train-clean-100 speech=PYROOMACOUSTICS/speech --train-mb 37 --validation-mb 4
"""

from __future__ import annotations

import argparse
import collections
import shutil
from pathlib import Path

from ppl_models.data.audio import list_audio_files
from ppl_models.data.speakers import _speaker_and_corpus, describe_split, speaker_of, split_by_speaker


def round_robin(by_speaker: dict, budget: float) -> list[Path]:
    """Every speaker's first utterance, then each speaker's next in turn while the bytes taken stay under budget."""
    chosen, used, k = [], 0, 0
    queues = list(by_speaker.values())
    while any(k < len(q) for q in queues) and (k == 0 or used < budget):
        for q in queues:
            if k < len(q) and (k == 0 or used < budget):
                chosen.append(q[k])
                used += q[k].stat().st_size
        k += 1
    return chosen


def main(args):
    roots = {name: Path(folder) for name, folder in (item.split("=", 1) for item in args.corpora)}
    files = [Path(f) for root in roots.values() for f in list_audio_files(root)]
    parts = split_by_speaker(files)
    budgets = (args.train_mb * 2**20, args.validation_mb * 2**20, 0)
    chosen = []
    for part, budget in zip(parts, budgets):
        by_speaker = collections.defaultdict(list)
        for f in sorted(part):
            by_speaker[_speaker_and_corpus(f)].append(f)
        chosen += round_robin(by_speaker, budget)
    out = Path(args.out)
    for f in chosen:
        name = next(n for n, root in roots.items() if root in f.parents)
        target = out / name / f.relative_to(roots[name])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    copied = split_by_speaker([f for name in roots for f in list_audio_files(out / name)])
    for original, copy in zip(parts, copied):
        if {speaker_of(f) for f in original} != {speaker_of(f) for f in copy}:
            raise SystemExit("the copy does not split into the same speakers (a corpus folder renamed?)")
    print(describe_split(copied))
    print("train-prior --data " + ",".join(str(out / name) for name in roots))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to copy into (one subfolder per corpus)")
    p.add_argument("corpora", nargs="+", metavar="NAME=FOLDER",
                   help="each corpus folder with the name its copy keeps (the split depends on the folder's name)")
    p.add_argument("--train-mb", type=float, default=37.0, help="bytes of training speakers' audio to copy, MiB")
    p.add_argument("--validation-mb", type=float, default=4.0, help="the same for the validation speakers")
    main(p.parse_args())
