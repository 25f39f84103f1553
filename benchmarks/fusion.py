"""Sensor-fusion table in the shape of Guo 2019, Table 1: every single-sensor expert, the concatenation
baseline and each attention mixture with and without co-learning and stacking, on each test condition (accuracy, F1),
plus how much attention the mixture gives a sensor while it fails against while it works.

Each condition is a folder written by ``ppl-models export-fusion`` (train.npz, test.npz with the test's
``corrupted_<sensor>`` masks); train and test come from disjoint speakers / times:

    D=../shared/data
    ppl-models export-fusion --dataset speech-activity --noise environment --data $D --out-dir sets/sad-noise
    ppl-models export-fusion --dataset speech-activity --noise babble --data $D --out-dir sets/sad-babble
    ppl-models export-fusion --dataset beats --corrupt ecg --data $D --out-dir sets/beats-ecg
    ppl-models export-fusion --dataset beats --corrupt pleth --data $D --out-dir sets/beats-pleth
    python benchmarks/fusion.py sets/sad-noise sets/sad-babble sets/beats-ecg sets/beats-pleth \\
        --seeds 0 1 2 --json fusion.json --figures fusion_figures

``--validation 0.25`` trains on three quarters of each set's training speakers (sequences where the file has
no groups) and scores the other quarter instead of test.npz: the split for choosing a model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyro

from ppl_models.data.fusion_files import load_fusion
from ppl_models.infer import resolve_device
from ppl_models.multimodal.fusion import MARK_ODDS, binary_scores, build_model, expert_predictions, fit, predict
from ppl_models.plots import plot_fusion

MIXTURES = ["cam", "mam", "ram", "mme"]
VALIDATION_SEED = 1234  # fixed: the same validation split for every model and seed


def model_rows(names: list[str], colearn: float, stack: int,
               mark_odds: float = MARK_ODDS) -> list[tuple[str, str, dict]]:
    """(row label, model name, options: build_model's, and ``stack`` for fit) of the table."""
    rows = []
    for encoder in ("frame", "recurrent"):  # baselines with the memory of cam and of mam
        rows += [(f"expert {n} ({encoder})", f"expert:{n}", {"encoder": encoder}) for n in names]
        rows.append((f"concat ({encoder})", "concat", {"encoder": encoder}))
    for m in MIXTURES:
        rows.append((m, m, {}))
        if m != "mme":
            rows.append((f"{m} + co-learning", m, {"colearn": colearn}))
            rows.append((f"{m} + stacking", m, {"stack": stack}))
            rows.append((f"{m} + stacking, gate reads experts", m, {"stack": stack, "gate_sees_experts": True}))
            rows.append((f"{m} + evidence", m, {"gate_evidence": True}))
            rows.append((f"{m} + evidence + snr", m, {"gate_evidence": True, "evidence_snr": True}))
            rows.append((f"{m} + evidence + marks", m, {"gate_evidence": True, "failure_marks": mark_odds}))
    rows.append(("cam, kappa = 0 (pure likelihood)", "cam", {"expert_weight": 0.0}))
    return rows


def attention_contrast(attention: np.ndarray, names: list[str], corrupted: dict[str, np.ndarray],
                       y: np.ndarray | None = None) -> str:
    """'name failing / working' mean attention for each corrupted sensor; with labels ``y``, also its mean
    attention in the failing frames labelled 1 (for the speech sets' audio, whose mask holds every pause)."""
    parts = []
    for name, mask in corrupted.items():
        if name in names and mask.any() and (~mask).any():
            a = attention[..., names.index(name)]
            part = f"{name} {a[mask].mean():.2f} / {a[~mask].mean():.2f}"
            if y is not None and (mask & (y == 1)).any() and (mask & (y == 0)).any():
                part += f" (failing, y = 1: {a[mask & (y == 1)].mean():.2f})"
            parts.append(part)
    return "; ".join(parts)


def run_condition(folder: str, args, device) -> list[dict]:
    condition = Path(folder).name
    train = load_fusion(Path(folder) / "train.npz", True)
    if args.validation:  # choose settings here: a quarter of the training speakers (or sequences), never the test
        held = train.taken(args.validation, seed=VALIDATION_SEED)
        train, test = train.subset(~held), train.subset(held)
    else:
        test = load_fusion(Path(folder) / "test.npz", True)
    corrupted = test.failing_frames()  # the marks of the scored part
    print(f"\n{condition}: train {train.shape}, test {test.shape}, sensors {train.names}, "
          f"label rate {test.y.mean():.2f}", flush=True)
    results = []
    for label, name, options in model_rows(train.names, args.colearn, args.stack, args.mark_odds):
        if args.rows and label not in args.rows:
            continue
        options = dict(options)
        stack = options.pop("stack", 0)
        scores, contrasts, seconds = [], [], []
        for seed in args.seeds:
            pyro.clear_param_store()
            pyro.set_rng_seed(seed)
            model = build_model(name, train, hidden=args.hidden, **options)
            start = time.perf_counter()
            fit(model, train, epochs=args.epochs, device=device, seed=seed, progress=False, stack=stack)
            seconds.append(time.perf_counter() - start)
            p, attention = predict(model, test, device)
            scores.append(binary_scores(test.y, p))
            contrasts.append(attention_contrast(attention, test.names, corrupted, test.y))
            if args.figures and seed == args.seeds[0] and name in ("cam", "mme") and not options:
                experts = expert_predictions(model, test.subset(slice(args.figure_sequence, args.figure_sequence + 1)),
                                             device)[0]
                i = args.figure_sequence
                plot_fusion(test.y[i], p[i], attention[i], test.names,
                            Path(args.figures) / f"{condition}-{name}.png", experts=experts,
                            corrupted={k: v[i] for k, v in corrupted.items()}, title=f"{condition}, {name}")
        row = {"condition": condition, "model": label,
               "accuracy": float(np.mean([s["accuracy"] for s in scores])),
               "accuracy_std": float(np.std([s["accuracy"] for s in scores])),
               "f1": float(np.mean([s["f1"] for s in scores])), "seeds": list(args.seeds),
               "accuracy_per_seed": [s["accuracy"] for s in scores], "f1_per_seed": [s["f1"] for s in scores],
               "attention_failing_vs_working": contrasts[0], "train_seconds": float(np.mean(seconds))}
        results.append(row)
        print(f"| {label} | {100 * row['accuracy']:.1f} ± {100 * row['accuracy_std']:.1f} | {100 * row['f1']:.1f} | "
              f"{row['attention_failing_vs_working']} | {row['train_seconds']:.0f} |", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="folders holding train.npz and test.npz (export-fusion)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--colearn", type=float, default=0.01, help="co-learning weight of the + co-learning rows")
    parser.add_argument("--stack", type=int, default=3, help="cross-fitting folds of the + stacking rows")
    parser.add_argument("--mark-odds", type=float, default=MARK_ODDS, metavar="EPSILON",
                        help=f"epsilon of the + marks rows (default {MARK_ODDS}, the fuse default's)")
    parser.add_argument("--rows", nargs="+", help="measure only these row labels, e.g. 'mam' 'mam + stacking'")
    parser.add_argument("--validation", type=float, default=0.0, metavar="SHARE",
                        help="score on this share of the TRAINING groups (speakers; else sequences) held out, "
                             "trained on the rest, instead of on test.npz: for choosing models (e.g. 0.25)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--figures", help="folder for the attention figures (cam and mme, first seed)")
    parser.add_argument("--figure-sequence", type=int, default=0, help="test sequence drawn in the figures")
    args = parser.parse_args(argv)
    if not 0 < args.mark_odds < 1:
        parser.error(f"--mark-odds is epsilon in (0, 1), got {args.mark_odds}")
    device = resolve_device(args.device)
    print("| model | accuracy % (mean ± std over seeds) | F1 % | attention on the failing sensor: failing / "
          "working frames | train s |\n|---|---|---|---|---|")
    rows = [row for folder in args.sets for row in run_condition(folder, args, device)]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
