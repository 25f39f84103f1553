"""The `fuse` default on a103l's two ECG leads, scored apart inside and outside the record's own artifact stretch.

37 % of the a103l test frames lie in the record's false-alarm stretch, where both leads carry real artifacts
(``artifact_ii | artifact_v`` of ``build_beat_detection(..., sensors="leads")``). A synthetic failure of one lead
that falls there leaves no working lead. For each failing lead and seed, this prints the default's F1 and the
working lead's recurrent expert's F1 (the baseline, same data and training), outside / inside that stretch, and
the gate's weight on the failing lead in its failing frames, outside / inside:

    python benchmarks/fusion_artifact_split.py --data ../shared/data --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pyro

from ppl_models.datasets.physio_beats import build_beat_detection
from ppl_models.multimodal.fusion import binary_scores, build_model, fit, predict

DEFAULT = "mam+evidence+marks"


def fitted(name: str, train, test, seed: int, **options):
    """(P(y_t = 1) (N, T), attention (N, T, M)) on ``test`` of model ``name`` trained on ``train``."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    model = build_model(name, train, **options)
    fit(model, train, seed=seed, progress=False)
    return predict(model, test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the shared data folder (multimodal_physionet_wfdb/a103l.npz)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    record = Path(args.data) / "multimodal_physionet_wfdb" / "a103l.npz"
    train, meta = build_beat_detection(record, "train", seed=0, sensors="leads")
    train = replace(train, failing={k[len("corrupted_"):]: v for k, v in meta.items() if k.startswith("corrupted_")})
    print("| failing lead | seed | default F1 outside / inside | working lead alone F1 outside / inside | "
          "gate on the failing lead outside / inside |\n|---|---|---|---|---|")
    for failing, working in (("ii", "v"), ("v", "ii")):
        test, meta = build_beat_detection(record, "test", failing, seed=0, sensors="leads")
        artifact = meta["artifact_ii"] | meta["artifact_v"]
        fails = meta[f"corrupted_{failing}"].astype(bool)
        for seed in args.seeds:
            p, attention = fitted(DEFAULT, train, test, seed)
            p_alone, _ = fitted(f"expert:{working}", train, test, seed, encoder="recurrent")
            gate = attention[..., test.names.index(failing)]

            def f1(q, where):
                return 100 * binary_scores(test.y[where], q[where])["f1"]

            print(f"| {failing} | {seed} | {f1(p, ~artifact):.1f} / {f1(p, artifact):.1f} | "
                  f"{f1(p_alone, ~artifact):.1f} / {f1(p_alone, artifact):.1f} | "
                  f"{gate[fails & ~artifact].mean():.2f} ({(fails & ~artifact).sum()} frames) / "
                  f"{gate[fails & artifact].mean():.2f} ({(fails & artifact).sum()} frames) |", flush=True)


if __name__ == "__main__":
    main()
