"""The ``demo`` command: the main job on the embedded synthetic data."""

from __future__ import annotations

from ppl_models.cli.common import add_common


def cmd_demo(args) -> int:
    from ppl_models.demo import run
    from ppl_models.infer import resolve_device

    summary = run(args.out, resolve_device(args.device), seed=args.seed, progress=not args.no_progress)
    noisy, gmm = summary["noisy_vs_clean"], summary["gmm"]
    print(f"demo written to {args.out}/ in {summary['seconds']} s:")
    print(f"  tracking window: {summary['tracking_window']}")
    cross = summary["crossing"]
    print(f"  tracks crossing under occlusion (tracking_vs_kalman.png): track's default MOTA "
          f"{cross['default']['mota']:.3f}, IDS {cross['default']['num_switches']:.0f}; Kalman + Hungarian MOTA "
          f"{cross['kalman_hungarian']['mota']:.3f}, IDS {cross['kalman_hungarian']['num_switches']:.0f}")
    print(f"  speech + pink noise 0 dB vs clean: SI-SDR {noisy['si_sdr']:.2f} dB, PESQ-WB {noisy['pesq']:.2f},"
          f" ESTOI {noisy['estoi']:.3f}")
    print(f"  enumerated GMM: MAP assignment accuracy {gmm['map_accuracy']:.3f}, "
          f"largest error on a mean {gmm['max_mean_error']:.3f}")
    rs = summary["dvae"]["rvae_resynthesis"]
    print(f"  small RVAE speech prior, resynthesis of unseen speech-like audio: SI-SDR {rs['si_sdr']:.2f} dB")
    fusion = summary["fusion"]
    single = max(v for k, v in fusion["accuracy"].items() if k.startswith("expert:"))
    print(f"  sensor fusion: attention mixture accuracy {fusion['accuracy']['cam']:.3f} (best single sensor "
          f"{single:.3f}); attention on the failing sensor {fusion['attention_on_sharp_failing']:.2f} while it "
          f"fails, {fusion['attention_on_sharp_working']:.2f} otherwise")
    imputed = summary["imputation"]["rmse_b_from_a"]
    print(f"  multimodal VRNN: sensor b imputed from sensor a, RMSE {imputed['mvrnn']:.3f} (b's own prior "
          f"{imputed['unimodal']:.3f})")
    enh = summary["enhancement"]
    print(f"  unsupervised enhancement (U-NA, LV): SI-SDR {enh['noisy']['si_sdr']:.2f} -> "
          f"{enh['enhanced']['si_sdr']:.2f} dB, PESQ-WB {enh['noisy']['pesq']:.2f} -> {enh['enhanced']['pesq']:.2f}")
    return 0


def add_parsers(sub) -> None:
    """Add demo."""
    p = sub.add_parser("demo", help="the main job on the embedded synthetic data (a few minutes on a CPU)",
                       description="Generate the synthetic data sets, draw them, and fit the enumerated Gaussian "
                                   "mixture by SVI. Figures, audio and summary.json go to --out.")
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_common(p)
    p.set_defaults(func=cmd_demo)
