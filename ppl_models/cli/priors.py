"""The prior commands: ``list``, ``train-prior``, ``export-prior``, ``import-prior``, ``resynth``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ppl_models.cli.common import add_common, at_least, audio_jobs, finish, padded, positive, read_inputs


def cmd_list(args) -> int:
    from ppl_models.catalog import CATALOG

    width = max(len(e.name) for e in CATALOG)
    for e in CATALOG:
        print(f"{e.name:<{width}}  [{e.family}]  {e.summary}  (guides: {', '.join(e.guides)})")
    from ppl_models.dvae.train import pretrained_names

    print(f"shipped priors (--prior NAME): {', '.join(pretrained_names()) or 'none'}")
    return 0


def _speeds(text: str) -> tuple[float, ...]:
    """--speed-perturb: comma-separated factors in [0.5, 2]."""
    try:
        speeds = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.9,1.0,1.1, got {text!r}")
    if not all(0.5 <= a <= 2.0 for a in speeds):
        raise argparse.ArgumentTypeError(f"speed factors must lie in [0.5, 2], got {text!r}")
    return speeds


def cmd_train_prior(args) -> int:
    from ppl_models.dvae.train import train_prior
    from ppl_models.infer import resolve_device

    dvae, history = train_prior(args.kind, args.model, args.out, data=args.data, epochs=args.epochs,
                                batch_size=args.batch, lr=args.lr, warmup_epochs=args.warmup, beta=args.beta,
                                frames=args.frames,
                                device=resolve_device(args.device), resume=args.resume, seed=args.seed,
                                scheduled_sampling=args.scheduled_sampling, patience=args.patience, size=args.size,
                                segment_hop=args.segment_hop, speeds=args.speed_perturb, init=args.init,
                                cuda_graphs=not args.no_cuda_graphs, time_budget=args.time_budget,
                                progress=not args.no_progress,
                                **{key: value for key, value in (("hidden", args.hidden), ("z_dim", args.z_dim),
                                                                 ("decoder_layers", args.decoder_layers),
                                                                 ("velocity", args.velocity or None))
                                   if value is not None})
    val = f", validation {history.val_loss[-1]:.4g}" if history.val_loss else ""
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one report
        print(f"{args.model} ({args.kind}) trained for {history.epochs} epochs: loss "
              f"{history.train_loss[-1]:.4g}{val}; checkpoint {args.out}")
    return 0


def cmd_export_prior(args) -> int:
    from ppl_models.dvae.train import export_prior

    out = export_prior(args.checkpoint, args.out)
    print(f"{args.checkpoint} -> {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_import_prior(args) -> int:
    from ppl_models.dvae.reference import import_prior

    dvae = import_prior(args.source, args.checkpoint, args.config, out=args.out)
    size = sum(p.numel() for p in dvae.parameters())
    kind = "speech" if dvae.likelihood.kind == "power" else "trajectory"
    print(f"{args.checkpoint} -> {args.out}: {type(dvae).__name__.lower()}"
          f"{'' if getattr(dvae, 'causal', True) else '-noncausal'} {kind} prior, z {dvae.z_dim}, "
          f"{size / 1e6:.2f} M parameters; use it as --prior {args.out}")
    return 0


def cmd_resynth(args) -> int:
    from ppl_models.data.audio import write_audio
    from ppl_models.dvae.resynthesis import resynthesize
    from ppl_models.dvae.train import load_prior
    from ppl_models.infer import resolve_device

    jobs = audio_jobs(Path(args.input), Path(args.out))
    device = resolve_device(args.device)
    dvae = load_prior(args.prior, device)
    loaded, failed = read_inputs(jobs, "resynth")  # a bad file is named and skipped; the others are written
    for src, dst, signal in loaded:
        write_audio(dst, resynthesize(dvae, padded(signal), device).numpy()[:len(signal)])
        print(f"{src} -> {dst}")
    return finish("resynth", len(jobs), failed)


def add_parsers(sub) -> None:
    """Add list, train-prior, export-prior, import-prior and resynth."""
    p = sub.add_parser("list", help="the systems and models available, one line each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train-prior", help="pre-train a DVAE sequence prior (trajectories or speech)",
                       description="Train a DVAE by SVI with a linear KL warm-up, writing a checkpoint every epoch "
                                   "(atomically; --resume continues an interrupted run). Data-parallel on K "
                                   "processes: torchrun --nproc_per_node=K -m ppl_models train-prior ...")
    p.add_argument("--kind", choices=["trajectory", "speech"], required=True, help="what the prior models")
    p.add_argument("--model", required=True,
                   help="vae, dkf, vrnn, srnn, rvae, rvae-noncausal, or the Transformer DVAEs with a sequence "
                        "latent hit-dvae and light-dvae (--hidden: their width d)")
    p.add_argument("--data", default="synthetic",
                   help="'synthetic', or for speech a folder of utterances (several: comma-separated), split by "
                        "speaker: each corpus holds out a tenth of its speakers for validation and a tenth for "
                        "testing, never trained on (benchmarks/resynthesis.py --held-out-of)")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=50, help="training epochs (default: 50)")
    p.add_argument("--batch", "--batch-size", type=at_least(1), default=32, metavar="N",
                   help="sequences per step (default: 32; the reference recipe: 128)")
    p.add_argument("--frames", type=at_least(2), default=None, metavar="T",
                   help="frames per training sequence (default: 50 for speech, as in the reference recipe; "
                        "60 for trajectories)")
    p.add_argument("--lr", type=float, default=1e-3, help="ClippedAdam learning rate (default: 1e-3)")
    p.add_argument("--beta", type=positive, default=None, metavar="B",
                   help="KL weight: the scale of the z terms of the ELBO, reached linearly over the --warmup "
                        "epochs (default: 0.01 for speech, the reference recipe; 1 for trajectories). Below 1 "
                        "z carries more of x: sharper resynthesis, at the cost of the prior's own samples")
    p.add_argument("--warmup", type=int, default=10, help="KL warm-up epochs (default: 10)")
    p.add_argument("--scheduled-sampling", type=float, default=0.0, metavar="P",
                   help="SRNN/VRNN: after the warm-up, ramp to probability P that the decoder reads its own "
                        "prediction as x_{t-1} (default: 0, teacher forcing only)")
    p.add_argument("--size", type=int, default=512, help="number of synthetic training sequences (default: 512)")
    p.add_argument("--segment-hop", type=int, default=None, metavar="FRAMES",
                   help="speech: start a training segment (--frames long) every FRAMES frames; shorter hops "
                        "overlap, augmenting a small corpus (default: --frames)")
    p.add_argument("--speed-perturb", type=_speeds, default=(1.0,), metavar="A,B,...",
                   help="speech: train on each utterance played at each of these speeds (e.g. 0.9,1.0,1.1: "
                        "pitch and formants move with the speed, so each speaker counts several times)")
    p.add_argument("--hidden", type=at_least(1), default=None,
                   help="width of the models' MLP layers (default: the kind's preset, 128 for speech)")
    p.add_argument("--z-dim", type=at_least(1), default=None, metavar="D",
                   help="latent size (default: the kind's preset, 4 for trajectories, 16 for speech)")
    p.add_argument("--decoder-layers", type=at_least(0), default=None, metavar="N",
                   help="rvae: hidden layers between the decoder's LSTM and its output (default: 1; the reference: 0)")
    p.add_argument("--velocity", action="store_true",
                   help="srnn, trajectory: the recurrence also reads the last displacement of the box, not only "
                        "the box (better one-step prediction of real motion; see benchmarks/RESULTS.md)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without validation improvement, keeping the best")
    p.add_argument("--time-budget", type=positive, default=None, metavar="SECONDS",
                   help="stop training before this many seconds are spent (data preparation not counted), "
                        "keeping the best validation epoch's weights, which export-prior writes")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--init", metavar="PRIOR",
                   help="start from this trained prior (checkpoint or shipped name) with a fresh optimizer: train "
                        "it longer or fine-tune it on your data; it fixes the sizes")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="on a GPU, run the guide's frame-by-frame sampling loop from Python instead of replaying it "
                        "from a recorded CUDA graph (same numbers, several times slower; for debugging)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_common(p)
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser("export-prior", help="strip a trained prior's checkpoint down to what using it needs",
                       description="Drop the optimizer state and the other resume-only entries of a train-prior "
                                   "checkpoint (the shipped priors are exported this way).")
    p.add_argument("checkpoint", help="a train-prior checkpoint")
    p.add_argument("--out", required=True, help="file to write")
    p.set_defaults(func=cmd_export_prior)

    p = sub.add_parser("import-prior", help="turn an authors' published DVAE prior into one of our checkpoints",
                       description="Read a pretrained prior of a reference implementation (a PyTorch state dict "
                                   "and the .ini config that describes its architecture), rebuild the same network "
                                   "from the zoo's DVAE classes and write our checkpoint, usable as --prior in "
                                   "resynth, enhance, separate and track. Supported: DVAE_SE's VAE, DKF, SRNN and "
                                   "non-causal RVAE; MixDVAE's SRNN priors (trajectories, speech, music). The "
                                   "imported networks read what the references read: the power of the "
                                   "peak-normalised signal, or boxes with y pointing down.")
    p.add_argument("--from", dest="source", choices=["dvae-se", "mixdvae"], required=True,
                   help="which reference implementation wrote the checkpoint (DVAE_SE or MixDVAE)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the reference's .pt state dict")
    p.add_argument("--config", metavar="INI",
                   help="its config (default: config.ini beside a DVAE_SE checkpoint, cfg_dvae_single_X.ini "
                        "beside MixDVAE's model_X.pt)")
    p.add_argument("--out", required=True, metavar="OUT.pt", help="our checkpoint to write")
    p.set_defaults(func=cmd_import_prior)

    p = sub.add_parser("resynth", help="analysis-resynthesis of speech through a speech prior",
                       description="Encode and decode the power spectrogram with a speech prior and resynthesise "
                                   "with the input phase. IN and --out: files, or folders (same names).")
    p.add_argument("input", metavar="IN", help="a wav/flac file or a folder of them")
    p.add_argument("--prior", default="hit-dvae-speech",
                   help="a speech-prior checkpoint (train-prior --kind speech) or a shipped prior's name "
                        "(default: hit-dvae-speech, the best resynthesiser of unseen speakers among the shipped "
                        "priors: benchmarks/RESULTS.md, Resynthesis)")
    p.add_argument("--out", required=True, help="output wav, or output folder when IN is a folder")
    add_common(p)
    p.set_defaults(func=cmd_resynth)
