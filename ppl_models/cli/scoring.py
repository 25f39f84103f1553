"""The ``score-audio`` command: metrics of estimated audio against clean references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ppl_models.cli.common import add_common, log, print_table


def _pair_files(ref: Path, est: Path, mixture: Path | None):
    """[(name, ref_file, est_file, mixture_file | None)], matching folders' files by name without suffix."""
    from ppl_models.data.audio import list_audio_files

    if ref.is_file():
        if est.is_dir() or (mixture is not None and mixture.is_dir()):
            raise ValueError("--ref is a file, so --est and --mixture must be files too")
        return [(ref.stem, ref, est, mixture)]
    if not ref.is_dir():
        raise FileNotFoundError(f"--ref {ref}: no such file or folder")
    if not est.is_dir():
        raise ValueError(f"--ref {ref} is a folder, so --est must be a folder too (got {est})")
    by_name = {}
    for folder in (est, mixture):
        by_name[folder] = {p.stem: p for p in list_audio_files(folder)} if folder is not None else {}
    pairs = []
    for r in list_audio_files(ref):
        if r.stem not in by_name[est]:
            log.warning("no estimate named %s in %s, skipped", r.stem, est)
            continue
        if mixture is not None and r.stem not in by_name[mixture]:
            raise ValueError(f"--mixture {mixture}: no file named {r.stem}")
        pairs.append((r.stem, r, by_name[est][r.stem], by_name[mixture].get(r.stem) if mixture else None))
    if not pairs:
        raise ValueError(f"no file of --est {est} matches a file of --ref {ref} by name")
    return pairs


def cmd_score_audio(args) -> int:
    from ppl_models.data.audio import load_audio
    from tqdm.auto import tqdm

    from ppl_models.metrics.audio import pesq_score, score

    pairs = _pair_files(Path(args.ref), Path(args.est), Path(args.mixture) if args.mixture else None)
    rows = {}
    for name, ref_path, est_path, mix_path in tqdm(pairs, desc="scoring", unit="file", disable=len(pairs) < 3):
        ref, est = load_audio(ref_path), load_audio(est_path)
        row = score(ref, est)
        if args.narrow_band:
            row["pesq_nb"] = pesq_score(ref, est, mode="nb")
        if mix_path is not None:
            mix = load_audio(mix_path)
            base = score(ref, mix)
            if args.narrow_band:
                base["pesq_nb"] = pesq_score(ref, mix, mode="nb")
            row.update({f"delta_{k}": row[k] - v for k, v in base.items()})
        rows[name] = row
    columns = list(next(iter(rows.values())))
    mean = {c: float(np.nanmean([r[c] for r in rows.values()])) for c in columns}
    if args.json:
        print(json.dumps({"files": rows, "mean": mean}, indent=2))
        return 0
    print_table(rows | ({"MEAN": mean} if len(rows) > 1 else {}), columns)
    return 0


def add_parsers(sub) -> None:
    """Add score-audio."""
    p = sub.add_parser("score-audio", help="SI-SDR, RMSE, PESQ and ESTOI of estimates against references",
                       description="Score estimated audio against clean references (files, or folders whose "
                                   "files are matched by name). With --mixture, also print the improvement "
                                   "(delta_*) of the estimate over the unprocessed mixture. Audio is read as "
                                   "16 kHz mono (resampled and mixed down when needed).")
    p.add_argument("--ref", required=True, help="clean reference: a file or a folder")
    p.add_argument("--est", required=True, help="estimate: a file or a folder")
    p.add_argument("--mixture", help="the unprocessed noisy mixture: a file or a folder")
    p.add_argument("--narrow-band", action="store_true", help="also report narrow-band PESQ (P.862)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_common(p, device=False)
    p.set_defaults(func=cmd_score_audio)
