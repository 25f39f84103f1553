"""What the command families share: the common options, argument types, tables, and the batch commands' error
handling (name each input that failed on stderr, go on with the others, exit with status 2)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("ppl_models")

SHORTEST = 1024  # samples (64 ms, one STFT window): shorter inputs are zero-padded to it and cut back after


def add_common(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """--device (unless ``device`` is False), --seed and -v/--verbose."""
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every epoch")


def add_train_and_write(parser: argparse.ArgumentParser, outputs: str) -> None:
    """The options of the commands that train on TRAIN.npz and write what they predict for TEST.npz."""
    parser.add_argument("--epochs", type=int, default=60, help="training epochs, early-stopped (default: 60)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units per network (default: 32)")
    parser.add_argument("--out", required=True, help=f"output .npz ({outputs})")
    parser.add_argument("--plot", help="figure of test sequence 0 (default: OUT with .png)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_common(parser)


def at_least(low: int):
    """An argparse type: an integer >= low."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def positive(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def print_table(rows: dict[str, dict], columns: list[str], headers: dict[str, str] | None = None) -> None:
    headers = headers or {}
    width = max(len(n) for n in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{headers.get(c, c):>9}" for c in columns))
    for name, row in rows.items():
        cells = []
        for c in columns:
            v = row[c]
            cells.append(f"{int(v):>9d}" if float(v).is_integer() and abs(v) > 1.5 and not math.isnan(v)
                         else f"{v:>9.4f}")
        print(f"{name:<{width}}  " + "  ".join(cells))


def audio_jobs(source: Path, out: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one file, or every audio file of a folder mirrored into the output folder."""
    from ppl_models.data.audio import list_audio_files

    if source.is_dir():
        jobs = [(f, out / f.relative_to(source).with_suffix(".wav")) for f in list_audio_files(source)]
        if not jobs:
            raise ValueError(f"{source}: no audio files (.wav, .flac, .ogg)")
        return jobs
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder but the input {source} is one file: give a file name")
    return [(source, out)]


def read_inputs(jobs: list[tuple[Path, Path]], command: str) -> tuple[list[tuple[Path, Path, np.ndarray]], list[Path]]:
    """Load every input of ``jobs``: (src, dst, signal) for the usable ones and the list of the others, each
    named on stderr with the reason (unreadable, empty, silent, NaN) so that the rest still gets processed."""
    from ppl_models.data.audio import load_audio

    loaded, failed = [], []
    for src, dst in jobs:
        try:
            loaded.append((src, dst, load_audio(src)))
        except (ValueError, FileNotFoundError) as err:
            report_failure(command, src, err)
            failed.append(src)
    return loaded, failed


def report_failure(command: str, src: Path, err: Exception) -> None:
    message = str(err) if str(src) in str(err) else f"{src}: {err}"
    print(f"ppl-models {command}: skipped {message}", file=sys.stderr)


def padded(signal: np.ndarray) -> np.ndarray:
    """The signal zero-padded at the end to :data:`SHORTEST` samples (the STFT needs one window)."""
    return np.pad(signal, (0, max(0, SHORTEST - len(signal))))


def finish(command: str, total: int, failed: list[Path]) -> int:
    """Exit status of a batch command: 0, or 2 after naming the inputs that were skipped."""
    if not failed:
        return 0
    print(f"ppl-models {command}: {len(failed)} of {total} inputs failed: {', '.join(map(str, failed))}",
          file=sys.stderr)
    return 2


def check_same_sensors(train, test, train_path, test_path) -> None:
    """The test file must hold the training file's sensors, at the same widths."""
    if train.names != test.names:
        raise ValueError(f"{test_path}: sensors {test.names} differ from {train_path}'s {train.names}")
    for name in train.names:
        if train.sensors[name].shape[-1] != test.sensors[name].shape[-1]:
            raise ValueError(f"{test_path}: x_{name} has width {test.sensors[name].shape[-1]}, "
                             f"{train_path} has {train.sensors[name].shape[-1]}")
