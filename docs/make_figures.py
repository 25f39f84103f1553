"""Make the README's figures: run ``ppl-models demo`` (the embedded synthetic default) into a temporary folder and
copy one figure per system into ``docs/figures/``, each re-encoded as a palette PNG of at most 200 KB.

    python docs/make_figures.py            # about a minute on 2 CPU cores
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

from ppl_models import demo

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


def main() -> int:
    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        demo.run(work, progress=sys.stderr.isatty())
        for name, source in FIGURES.items():
            data = small_png(Path(work) / source)
            tmp = out / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, out / name)
            print(f"docs/figures/{name}: {len(data) / 1000:.0f} kB (from the demo's {source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
