"""Write the training recordings of the Philharmonia phrases as 16 kHz wavs for ``ppl-models train-prior``.

Every instrument's phrases are split by recording as in ``separation.py`` (``music_split``: sorted by name,
index % 5 == 0 test, == 1 validation, the rest train); only the training ones are written, one folder per
recording (``OUT/philharmonia/NAME/NAME.wav``), so that ``train-prior``'s split by folder ("speaker") holds out
whole recordings for its own validation. The shipped ``rvae-music`` prior was trained on this folder:

    python benchmarks/music_subset.py --music-dir ../shared/data/music_philharmonia --out MUSIC
    ppl-models train-prior --kind speech --model rvae --data MUSIC/philharmonia --out rvae-music-train.pt \\
        --epochs 300 --batch 32 --segment-hop 25 --warmup 5 --lr 2e-3 --patience 30 --time-budget 720
    ppl-models train-prior ... --resume --time-budget 600      # the same arguments, 15 more epochs
    ppl-models export-prior rvae-music-train.pt --out rvae-music.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from separation import music_split

from ppl_models.data.audio import load_audio, write_audio

INSTRUMENTS = ("flute", "violin", "clarinet", "trumpet", "oboe")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--music-dir", required=True, help="the Philharmonia folder (music_philharmonia)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--instruments", default=",".join(INSTRUMENTS), help="comma-separated (default: all five)")
    args = p.parse_args(argv)
    written = 0
    for instrument in args.instruments.split(","):
        for f in music_split(args.music_dir, instrument, "train"):
            write_audio(Path(args.out) / "philharmonia" / f.stem / f"{f.stem}.wav", load_audio(f))
            written += 1
    print(f"{written} training recordings -> {args.out}/philharmonia")


if __name__ == "__main__":
    main()
