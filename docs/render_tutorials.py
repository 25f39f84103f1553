"""Render every tutorial, executed, with its figures, as Markdown pages in ``docs/tutorials/``.

    pip install -e '.[docs]'
    python docs/render_tutorials.py                 # all tutorials, full size (tens of minutes on a laptop CPU)
    python docs/render_tutorials.py --quick 03 06   # some of them, in the reduced mode the tests run

Each ``tutorials/NN_*.py`` (jupytext percent format) becomes a notebook, is executed by a Jupyter kernel
(nbconvert), and is written as ``docs/tutorials/NN_*.md`` with its figures beside it in ``NN_*_files/``.
A tutorial that fails is named and the others are still rendered; the exit status is 1 then.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import ExecutePreprocessor

from make_figures import MAX_BYTES, small_png  # docs/, beside this script

ROOT = Path(__file__).resolve().parents[1]


def render(script: Path, out_dir: Path, quick: bool) -> Path:
    notebook = jupytext.read(script)
    os.environ["TUTORIAL_QUICK"] = "1" if quick else "0"
    with tempfile.TemporaryDirectory() as work:
        os.environ["TUTORIAL_OUT"] = work  # the tutorials' own figure files; the page embeds what they show
        ExecutePreprocessor(timeout=None, kernel_name="python3").preprocess(notebook, {"metadata": {"path": ROOT}})
    for cell in notebook.cells:  # progress bars and library warnings go to stderr: not part of the page
        cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
    body, resources = MarkdownExporter().from_notebook_node(notebook, resources={"output_files_dir": f"{script.stem}_files"})
    # no paths of the machine that rendered it: the figures' folder as a reader running the script gets it
    body = body.replace(work, "tutorial_output").replace(str(ROOT), ".")
    page = out_dir / f"{script.stem}.md"
    figures = out_dir / f"{script.stem}_files"
    shutil.rmtree(figures, ignore_errors=True)
    for name, data in resources.get("outputs", {}).items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_bytes(data)
        if name.endswith(".png") and len(data) > MAX_BYTES:
            (out_dir / name).write_bytes(small_png(out_dir / name))
    tmp = page.with_suffix(".md.tmp")
    tmp.write_text(body)
    os.replace(tmp, page)
    return page


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="tutorial numbers or names to render (default: all)")
    parser.add_argument("--quick", action="store_true", help="the reduced mode the tests run (TUTORIAL_QUICK=1)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tutorials", help="where the pages go")
    args = parser.parse_args(argv)
    scripts = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    if args.only:
        scripts = [s for s in scripts if any(s.stem.startswith(o) or s.stem == o for o in args.only)]
        if not scripts:
            parser.error(f"no tutorial matches {' '.join(args.only)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for script in scripts:
        start = time.time()
        try:
            page = render(script, args.out, args.quick)
            print(f"{script.name}: {page.relative_to(ROOT) if page.is_relative_to(ROOT) else page} "
                  f"({time.time() - start:.0f} s)")
        except Exception as error:  # noqa: BLE001 - one failing tutorial must not stop the others
            failed.append(script.name)
            print(f"{script.name}: FAILED: {str(error).strip().splitlines()[-1] if str(error).strip() else error!r}",
                  file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
