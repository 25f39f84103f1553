"""Make the README's figures: run ``ppl-models demo`` (the embedded synthetic default) into a temporary folder and
copy one figure per system into ``docs/figures/``, each re-encoded as a palette PNG of at most 200 KB.
The separation figure needs real recordings (the shipped priors model real speech and real instruments, not the
demo's synthetic sounds): a held-out LibriSpeech test-other utterance and a held-out Philharmonia flute phrase
from the data folder (``--data``), separated by ``separate``'s defaults; skipped, with a message, without it.

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
    "fusion.png": "fusion_attention.png",
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


def write_small(source: Path, name: str) -> int:
    data = small_png(source)
    tmp = HERE / "figures" / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, HERE / "figures" / name)
    return len(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data",
                        help="the real-data folder, for the separation figure (default: ../shared/data)")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
