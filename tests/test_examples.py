"""Every example runs with tiny arguments and every tutorial runs as a script (as Pyro's test_examples.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared

ROOT = Path(__file__).resolve().parents[1]


def run_script(path, *args, cwd, env=None):
    result = subprocess.run([sys.executable, str(path), *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_gmm_example_recovers_clusters(tmp_path):
    out = run_script(ROOT / "examples" / "gmm_enumeration.py", "--points", "300", "--epochs", "200", "--quiet",
                     "--out", str(tmp_path / "fit.png"), cwd=tmp_path)
    accuracy = float(re.search(r"MAP assignment accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.98
    assert (tmp_path / "fit.png").is_file()


def test_synthetic_data_example_on_real_mot(tmp_path):
    gt = shared("mot15_train_gt", "Venice-2", "gt", "gt.txt")
    det = shared("mot15_sort_frcnn_det", "Venice-2-det.txt")
    out = run_script(ROOT / "examples" / "synthetic_data.py", "--out", str(tmp_path), "--mot-gt", str(gt),
                     "--mot-det", str(det), cwd=tmp_path)
    assert "windows of 60 frames with 3 tracks" in out and (tmp_path / "mot_window.png").is_file()


@pytest.mark.parametrize("tutorial", sorted((ROOT / "tutorials").glob("*.py")), ids=lambda p: p.name)
def test_tutorial_runs_as_a_script(tutorial, tmp_path):
    run_script(tutorial, cwd=tmp_path, env={"TUTORIAL_OUT": str(tmp_path), "TUTORIAL_QUICK": "1"})
