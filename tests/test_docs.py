"""The documentation a newcomer reads: links that resolve, small figures, a rendered page for every tutorial."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target) and ![alt](target)


@pytest.mark.parametrize("page", PAGES + sorted((ROOT / "docs" / "tutorials").glob("*.md")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = [target for target in LINK.findall(page.read_text())
              if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_readme_figures_are_small_pngs():
    figures = [ROOT / target for target in LINK.findall((ROOT / "README.md").read_text()) if target.endswith(".png")]
    assert len(figures) >= 5
    for figure in figures:
        assert figure.stat().st_size <= 200_000, f"{figure.name}: {figure.stat().st_size} bytes"


MACHINE_PATH = re.compile(r"(?<![\w.])/(tmp|home|work|root|Users|var/folders|private|mnt)/|[A-Z]:\\[A-Za-z]")


@pytest.mark.parametrize("script", sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_every_tutorial_has_a_current_rendered_page_without_machine_paths(script):
    """The page exists, shows every code line of the script as it is now (re-render after editing a tutorial:
    python docs/render_tutorials.py NN), and names no folder of the machine that rendered it."""
    page = ROOT / "docs" / "tutorials" / f"{script.stem}.md"
    assert page.is_file(), f"{script.name} is not rendered: python docs/render_tutorials.py {script.stem[:2]}"
    text = page.read_text()
    code = [line for line in script.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stale = [line for line in code if line not in text]
    assert not stale, f"{page.name} is older than {script.name} (first changed line: {stale[0]!r})"
    assert not MACHINE_PATH.search(text), f"{page.name} holds a machine path"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's "use it from Python" block, run as written on small files of the names it reads."""
    import numpy as np

    from ppl_models.data.audio import write_audio
    from ppl_models.data.synthetic.audio import colored_noise, speech_like

    block = re.search(r"## Use it from Python\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README has no 'Use it from Python' code block"
    speech = speech_like(1.0, seed=0)
    write_audio(tmp_path / "clean.wav", speech)
    write_audio(tmp_path / "noisy.wav", speech + 0.3 * np.std(speech) * colored_noise(1.0, "white", seed=1))
    (tmp_path / "MOT17-02" / "det").mkdir(parents=True)
    (tmp_path / "MOT17-02" / "det" / "det.txt").write_text("1,-1,10,20,30,60,0.9\n2,-1,12,20,30,60,0.8\n")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert (tmp_path / "enhanced.wav").is_file()
    assert len(namespace["speech"]) == len(speech) and len(namespace["detections"]) == 2
