"""Make the README's figures: run ``ppl-models demo`` (the embedded synthetic default) into a temporary folder and
copy one figure per system into ``docs/figures/``, each re-encoded as a palette PNG of at most 200 KB.
The separation figure needs real recordings (the shipped priors model real speech and real instruments, not the
demo's synthetic sounds): a held-out LibriSpeech test-other utterance and a held-out Philharmonia flute phrase
from the data folder (``--data``), separated by ``separate``'s defaults; skipped, with a message, without it.
So is the fusion figure (Guo 2019, Fig. 17-18): ``fuse``'s default on the real a103l beats with the ECG failing.

    python docs/make_figures.py [--data ../shared/data]     # a few minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
FIGURES = {  # README figure -> the demo's file
    "tracking.png": "tracking_vs_kalman.png",
    "enhancement.png": "enhancement_spectrograms.png",
    "resynthesis.png": "rvae_resynthesis.png",
    "imputation.png": "mvrnn_imputation.png",
}
MAX_BYTES = 200_000


def small_png(path: Path, max_width: int = 1100) -> bytes:
    """The image as a 256-colour PNG, narrowed to ``max_width`` pixels and halved until under MAX_BYTES."""
    image = Image.open(path).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    while True:
        buffer = io.BytesIO()
        image.quantize(colors=256).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            return buffer.getvalue()
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)


def separation_figure(data: Path, path: Path, frames: int = 100, smr_db: float = 0.0, seed: int = 1) -> str:
    """Spectrograms of a held-out speech + flute mixture and of what ``separate``'s defaults make of it."""
    import numpy as np

    from ppl_models import load_prior
    from ppl_models.metrics.audio import si_sdr
    from ppl_models.mixdvae.separation import separate
    from ppl_models.plots import plot_spectrograms

    spec = importlib.util.spec_from_file_location("separation_bench", HERE.parent / "benchmarks" / "separation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # the benchmark's held-out sets and mixing, so the figure is one of its mixtures
    speech = bench.speech_set(data / "speech_librispeech_resemblyzer" / "test-other", 20)
    music = bench.music_set(bench.music_split(data / "music_philharmonia", "flute", "test"))
    s, m, x = bench.make_mixture(speech, music, frames, smr_db, np.random.default_rng(seed))
    result = separate(x.astype(np.float32), [load_prior("rvae-speech"), load_prior("rvae-music")])
    scores = [si_sdr(s, result.sources[0]), si_sdr(m, result.sources[1])]
    plot_spectrograms({f"mixture: held-out speech + flute, {smr_db:g} dB": x,
                       f"separated speech ({scores[0]:.1f} dB SI-SDR)": result.sources[0], "true speech": s,
                       f"separated flute ({scores[1]:.1f} dB SI-SDR)": result.sources[1], "true flute": m}, path)
    return f"speech {scores[0]:.1f} dB, flute {scores[1]:.1f} dB SI-SDR"


def fusion_default_figure(data: Path, path: Path, seed: int = 0) -> str:
    """``fuse``'s default trained on the real a103l beats set (``export-fusion --dataset beats --corrupt ecg``),
    drawn on the first test sequence whose ECG failure starts and ends inside it: the signals, the label and
    the fused P(beat), each expert's P(beat), the gate's attention. Also fits each sensor's recurrent expert
    alone (the strongest simple baseline) and returns the measured numbers: attention on the ECG in its failing
    / working frames and F1 against the best single sensor, for that sequence and for the whole test split."""
    import numpy as np
    import pyro

    from ppl_models.cli.fusion import DEFAULT_MODEL, fusion_splits
    from ppl_models.multimodal.fusion import binary_scores, build_model, expert_predictions, fit, predict
    from ppl_models.plots import plot_fusion

    train, test = fusion_splits("beats", data, "environment", "ecg", seed)
    failing = test.failing_frames()["ecg"]

    def fitted_predict(name: str, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(beat) (N, T), attention (N, T, M), each expert's P(beat) (N, T, E)) on the test split."""
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        model = build_model(name, train, **options)
        fit(model, train, seed=seed, progress=False)
        return (*predict(model, test), expert_predictions(model, test))

    p, attention, experts = fitted_predict(DEFAULT_MODEL)
    single = {n: fitted_predict(f"expert:{n}", encoder="recurrent")[0] for n in test.names}
    i = next(i for i, f in enumerate(failing) if f.any() and not f[0] and not f[-1])
    ecg = test.sensors["ecg"][i]
    plot_fusion(test.y[i], p[i], attention[i], test.names, path, experts=experts[i], corrupted={"ecg": failing[i]},
                signals={"ECG II": ecg[:, :10].ravel(), "ECG V": ecg[:, 10:].ravel(),
                         "PLETH": test.sensors["pleth"][i].ravel()},
                title=f"fuse's default ({DEFAULT_MODEL}) on real a103l beats, ECG failing, test sequence {i}")

    def numbers(part) -> str:
        a, f = attention[part][..., test.names.index("ecg")], failing[part]
        f1 = {n: binary_scores(test.y[part], q[part])["f1"] for n, q in single.items()}
        best = max(f1, key=f1.get)
        return (f"attention on ECG {a[f].mean():.2f} failing / {a[~f].mean():.2f} working frames, F1 "
                f"{binary_scores(test.y[part], p[part])['f1']:.3f} against {f1[best]:.3f} for {best} alone "
                f"({', '.join(f'{n} {v:.3f}' for n, v in f1.items())})")

    return f"sequence {i}: {numbers(slice(i, i + 1))}\n    test split: {numbers(slice(None))}"


def write_small(source: Path, name: str) -> int:
    data = small_png(source)
    tmp = HERE / "figures" / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, HERE / "figures" / name)
    return len(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data",
                        help="the real-data folder, for the separation and fusion figures (default: ../shared/data)")
    args = parser.parse_args(argv)
    from ppl_models import demo

    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        demo.run(work, progress=sys.stderr.isatty())
        for name, source in FIGURES.items():
            size = write_small(Path(work) / source, name)
            print(f"docs/figures/{name}: {size / 1000:.0f} kB (from the demo's {source})")
        if (args.data / "music_philharmonia").is_dir():
            scores = separation_figure(args.data, Path(work) / "separation.png")
            size = write_small(Path(work) / "separation.png", "separation.png")
            print(f"docs/figures/separation.png: {size / 1000:.0f} kB ({scores})")
        else:
            print(f"docs/figures/separation.png: not remade ({args.data} has no music_philharmonia)")
        if (args.data / "multimodal_physionet_wfdb" / "a103l.npz").is_file():
            scores = fusion_default_figure(args.data, Path(work) / "fusion-default.png")
            size = write_small(Path(work) / "fusion-default.png", "fusion-default.png")
            print(f"docs/figures/fusion-default.png: {size / 1000:.0f} kB\n    {scores}")
        else:
            print(f"docs/figures/fusion-default.png: not remade ({args.data} has no "
                  "multimodal_physionet_wfdb/a103l.npz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
