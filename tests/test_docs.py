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
