"""Imputation table (Guo 2019, sec. 5): for each data set and each target sensor, every model is trained on
train.npz and imputes the target on test.npz from the other sensors; RMSE (in the file's units), share of the
true values inside +- 2 std, CRPS and negative log-density of the predictive N(mean, std^2) per value (proper
scores: they also charge a wrong std), and the held-out score per observed value (exact log-likelihood for
hmm/lds, ELBO for the neural models, over all sensors; not given for unimodal, which models the target alone).

    D=../shared/data
    ppl-models export-physionet --record mixedsignals --data $D --out-dir sets/physio-mixed
    ppl-models export-physionet --record a103l --data $D --out-dir sets/physio-a103l
    python benchmarks/imputation.py sets/physio-mixed sets/physio-a103l --seeds 0 1 2 --json imputation.json
    ppl-models export-multimodal --dataset private-dynamics --out-dir sets/syn-private   # synthetic, no data
    python benchmarks/imputation.py sets/syn-private:b --gap 16 --seeds 0 1 2   # b has dynamics a never sees

``ridge`` (linear regression on the other sensors' frames t-k .. t+k, k chosen on held-out training windows) is
the simple baseline every model must beat; it is deterministic, so its std over seeds is 0.

A set folder may name its targets in the command line as FOLDER:target1,target2 (default: every sensor).
``--probe`` adds, for each MVRNN, the linear probe of ``ppl_models.multimodal.probe``: R^2 of each sensor's test
frames read off each latent chain (shared or private), fitted on the train frames. ``--gap FRAMES`` also imputes
the target through one gap per test sequence, the target seen everywhere else, and scores only the gap.
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
from ppl_models.multimodal.imputation import (IMPUTERS, build_imputer, fit, held_out_score, impute,
                                              imputation_scores)
from ppl_models.multimodal.probe import probe


def gap_frames(shape: tuple[int, int], length: int, seed: int = 0) -> np.ndarray:
    """(N, T) bool: one gap of ``length`` frames per sequence, starting at a random frame of the middle half
    (the same gaps for every model: a fixed seed)."""
    N, T = shape
    if not 0 < length <= T // 2:
        raise ValueError(f"--gap must be between 1 and half the sequence length ({T // 2}), got {length}")
    start = np.random.default_rng(seed).integers(T // 4, T - length - T // 4 + 1, size=N)
    return (np.arange(T) >= start[:, None]) & (np.arange(T) < (start + length)[:, None])


def run_set(spec: str, args, device) -> list[dict]:
    folder, _, targets = spec.partition(":")
    train, test = load_fusion(Path(folder) / "train.npz"), load_fusion(Path(folder) / "test.npz")
    print(f"\n{folder}: train {train.shape}, test {test.shape}, sensors {train.names}", flush=True)
    rows = []
    for target in targets.split(",") if targets else train.names:
        for name in args.models:
            runs = []
            for seed in args.seeds:
                pyro.clear_param_store()
                pyro.set_rng_seed(seed)
                start = time.perf_counter()
                model = build_imputer(name, train, target=target, hidden=args.hidden)
                _, standard = fit(model, train, epochs=args.epochs, device=device, seed=seed, progress=False)
                mean, std = impute(model, standard, test, target, device)
                score = imputation_scores(test.sensors[target], mean, std, test.mask(target))
                if args.gap:  # the target seen around one gap per sequence; only the gap's frames scored
                    hidden = gap_frames(test.mask(target).shape, args.gap)
                    mean, std = impute(model, standard, test, target, device, hidden=hidden)
                    gap = imputation_scores(test.sensors[target], mean, std, test.mask(target) * hidden)
                    score.update({f"gap_{k}": v for k, v in gap.items()})
                score["held_out"] = np.nan if name == "unimodal" else held_out_score(model, standard, test, device)
                score["seconds"] = time.perf_counter() - start
                if args.probe and name == "mvrnn":
                    r2 = probe(model, standard, train, test, device=device)
                    score.update({f"r2_{q}_from_{chain}": v for q, row in r2.items() for chain, v in row.items()})
                    print(f"  probe, seed {seed}: " + "; ".join(f"{q} from " + ", ".join(
                        f"z_{chain} {v:.2f}" for chain, v in row.items()) for q, row in r2.items()), flush=True)
                runs.append(score)
            row = {"set": Path(folder).name, "target": target, "model": name,
                   **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]},
                   **{f"{k}_std": float(np.std([r[k] for r in runs]))
                      for k in ("rmse", "crps", "gap_rmse", "gap_crps") if k in runs[0]}}
            rows.append(row)
            held = "" if np.isnan(row["held_out"]) else f"{row['held_out']:.3f}"
            gap = (f" {row['gap_rmse']:.3f} ± {row['gap_rmse_std']:.3f} | {100 * row['gap_coverage']:.1f} | "
                   f"{row['gap_crps']:.3f} ± {row['gap_crps_std']:.3f} | {row['gap_nll']:.2f} |" if args.gap else "")
            print(f"| {row['set']} | {target} | {name} | {row['rmse']:.3f} ± {row['rmse_std']:.3f} | "
                  f"{100 * row['coverage']:.1f} | {row['crps']:.3f} ± {row['crps_std']:.3f} | {row['nll']:.2f} | "
                  f"{held} | {row['seconds']:.0f} |{gap}", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="folders holding train.npz and test.npz, optionally FOLDER:targets")
    parser.add_argument("--models", nargs="+", default=IMPUTERS, choices=IMPUTERS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--probe", action="store_true", help="probe what each MVRNN latent chain carries")
    parser.add_argument("--gap", type=int, default=0, metavar="FRAMES",
                        help="also impute the target through one gap of FRAMES frames per test sequence, seen "
                             "everywhere else, and score the gap (two more columns)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gap = f" gap of {args.gap}: RMSE | within 2 std % | CRPS | NLL |" if args.gap else ""
    print(f"| set | target | model | RMSE | within 2 std % | CRPS | NLL / value | held-out score / value | train s |"
          f"{gap}")
    print("|---" * (9 + 4 * bool(args.gap)) + "|")
    rows = [row for spec in args.sets for row in run_set(spec, args, device)]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
