"""Figures a person would rather look at than read: trajectories, detections, spectrograms, ELBO curves.

Every function draws into a new figure, saves it atomically to ``path`` (PNG) and closes it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
PALETTE = sns.color_palette("tab10")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` atomically (a PNG), then close it; inside a notebook (a rendered tutorial) it is
    also shown in the page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    if "ipykernel" in sys.modules:
        from IPython.display import Image, display
        display(Image(filename=str(path)))
    return path


def plot_trajectories(trajectories: np.ndarray, path, title: str = "Synthetic box trajectories"):
    """(n, T, 4) x1y1x2y2 boxes: the path of each box centre, with the first and last box drawn."""
    fig, ax = plt.subplots(figsize=(6, 6))
    for i, traj in enumerate(trajectories):
        color = PALETTE[i % len(PALETTE)]
        centre = (traj[:, :2] + traj[:, 2:]) / 2
        ax.plot(centre[:, 0], centre[:, 1], color=color, lw=1.5)
        for box, style in ((traj[0], ":"), (traj[-1], "-")):
            x1, y1, x2, y2 = box
            ax.add_patch(plt.Rectangle((min(x1, x2), min(y1, y2)), abs(x2 - x1), abs(y2 - y1), fill=False,
                                       ec=color, ls=style, lw=0.8))
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="x", ylabel="y",
           title=f"{title}\n(centre paths; dotted: first box, solid: last box)")
    return save_figure(fig, path)


def plot_track_window(window, path, title: str = "N-track window"):
    """Ground-truth centre paths (lines) and detections coloured by their true source (dots)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    T = len(window.frames)
    for n in range(window.tracks.shape[1]):
        color = PALETTE[n % len(PALETTE)]
        centre = (window.tracks[:, n, :2] + window.tracks[:, n, 2:]) / 2
        det = window.detections[window.labels == n]
        det_centre = (det[:, :2] + det[:, 2:]) / 2
        t_det = np.nonzero(window.labels == n)[0]
        axes[0].plot(centre[:, 0], centre[:, 1], color=color, lw=2, label=f"source {n}")
        axes[0].scatter(det_centre[:, 0], det_centre[:, 1], color=color, s=10, alpha=0.7)
        axes[1].plot(np.arange(T), centre[:, 0], color=color, lw=2)
        axes[1].scatter(t_det, det_centre[:, 0], color=color, s=10, alpha=0.7)
    missed = (~window.mask).sum()
    axes[0].set(title=f"{title}: centres (x, y)", xlabel="x", ylabel="y")
    axes[0].invert_yaxis()  # image coordinates: y points down
    axes[0].legend(fontsize=8)
    axes[1].set(title=f"x over time ({missed} missed detections)", xlabel="frame", ylabel="x")
    return save_figure(fig, path)


def plot_tracking_result(window, estimates: np.ndarray, responsibilities: np.ndarray, path,
                         title: str = "MixDVAE tracking"):
    """What a mixture tracker believes: estimated tracks (lines) over the truth (thin grey), and every
    detection coloured by its posterior assignment, the blend sum_n P(w_tk = n) colour_n of the sources'
    colours (a detection the tracker is unsure about is a mixed colour).

    ``window`` in image coordinates, estimates (N, T, 4) in the same coordinates, responsibilities (T, K, N)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    N, T = estimates.shape[0], len(window.frames)
    colours = np.array(PALETTE[:N])  # (N, 3)
    centre = lambda boxes: (boxes[..., :2] + boxes[..., 2:]) / 2  # noqa: E731
    truth, est, det = centre(window.tracks), centre(estimates), centre(window.detections)  # (T,N,2) (N,T,2) (T,K,2)
    t_det, k_det = np.nonzero(window.mask)
    blend = np.clip(responsibilities[t_det, k_det, :N] @ colours, 0, 1)
    for n in range(window.tracks.shape[1]):
        axes[0].plot(truth[:, n, 0], truth[:, n, 1], color="0.6", lw=4, alpha=0.5)
        axes[1].plot(np.arange(T), truth[:, n, 0], color="0.6", lw=4, alpha=0.5)
    for n in range(N):
        axes[0].plot(est[n, :, 0], est[n, :, 1], color=colours[n], lw=1.5, label=f"source {n + 1}")
        axes[1].plot(np.arange(T), est[n, :, 0], color=colours[n], lw=1.5)
    axes[0].scatter(det[t_det, k_det, 0], det[t_det, k_det, 1], c=blend, s=12, zorder=3)
    axes[1].scatter(t_det, det[t_det, k_det, 0], c=blend, s=12, zorder=3)
    axes[0].invert_yaxis()  # image coordinates: y points down
    axes[0].set(title=f"{title}: centres (grey: truth)", xlabel="x", ylabel="y")
    axes[0].legend(fontsize=8)
    axes[1].set(title="x over time; dots coloured by P(assignment)", xlabel="frame", ylabel="x")
    return save_figure(fig, path)


def plot_tracking_comparison(window, ours: np.ndarray, responsibilities: np.ndarray, theirs: np.ndarray,
                             switches: list[tuple[int, int, int]], path, titles: tuple[str, str]):
    """Two trackers through the same window, x of each box centre over time: on the left ``ours`` with every
    detection coloured by its posterior assignment (the blend sum_n P(a_t gives k to n) colour_n); on the right
    ``theirs`` over black detections, its identity ``switches`` (frame index, truth index, estimate index) marked.
    Truth in thick grey; ticks below: frames missing a detection. With switches, a second row zooms on them.
    ``window`` in image coordinates; estimates (N, T, 4) in the same coordinates; responsibilities (T, K, N')
    (a clutter column beyond N is left out of the colours)."""
    rows = 2 if switches else 1
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.2 * rows), squeeze=False)
    N, T = ours.shape[0], len(window.frames)
    colours = np.array(PALETTE[:N])
    x = lambda boxes: (boxes[..., 0] + boxes[..., 2]) / 2  # noqa: E731
    t_det, k_det = np.nonzero(window.mask)
    det = x(window.detections)[t_det, k_det]
    blend = np.clip(responsibilities[t_det, k_det, :N] @ colours, 0, 1)
    missed = np.nonzero(window.mask.sum(-1) < window.tracks.shape[1])[0]
    for row in axes:
        for ax, est in zip(row, (ours, theirs)):
            for n in range(window.tracks.shape[1]):
                ax.plot(np.arange(T), x(window.tracks[:, n]), color="0.6", lw=5, alpha=0.45)
            for n in range(N):
                ax.plot(np.arange(T), x(est[n]), color=colours[n], lw=1.6, label=f"source {n + 1}")
        row[0].scatter(t_det, det, c=blend, s=14, zorder=3, edgecolors="none")
        row[1].scatter(t_det, det, color="k", s=6, zorder=3)
        for t, _, h in switches:
            row[1].scatter(t, x(theirs[h, t]), marker="X", s=140, color="red", edgecolors="k", zorder=4)
    if switches:
        frames = [t for t, _, _ in switches]
        t0, t1 = max(0, min(frames) - 8), min(T - 1, max(frames) + 8)
        near = x(window.tracks[t0:t1 + 1, sorted({n for _, n, _ in switches})])
        pad = 0.3 * (near.max() - near.min()) + 0.005
        for ax in axes[1]:
            ax.set(xlim=(t0 - 0.5, t1 + 0.5), ylim=(near.min() - pad, near.max() + pad), xlabel="frame",
                   title=f"zoom on frames {t0}-{t1}")
        axes[1, 1].scatter([], [], marker="X", s=80, color="red", edgecolors="k", label="identity switch")
    for row in axes:
        low = row[0].get_ylim()[0]
        for ax in row:
            ax.set_ylim(*row[0].get_ylim())
            ax.scatter(missed, np.full(len(missed), low), marker="|", color="0.3", s=40, zorder=5,
                       label="frame with a missed detection")
        row[0].set_ylabel("x of the box centre")
    axes[0, 0].set_title(f"{titles[0]}\ndots coloured by P(assignment)")
    axes[0, 1].set_title(f"{titles[1]}\n{len(switches)} identity switch{'es' if len(switches) != 1 else ''}")
    axes[-1, 1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_spectrograms(signals: dict[str, np.ndarray], path, sample_rate: int = 16000):
    """Log-power spectrograms (dB) of several signals, one panel each."""
    from ppl_models.data.stft import HOP_LENGTH, power_spectrogram

    fig, axes = plt.subplots(len(signals), 1, figsize=(9, 2.2 * len(signals)), squeeze=False)
    for ax, (name, signal) in zip(axes[:, 0], signals.items()):
        power = power_spectrogram(signal).numpy()
        db = 10 * np.log10(power + 1e-10)
        extent = (0, power.shape[1] * HOP_LENGTH / sample_rate, 0, sample_rate / 2000)
        ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=db.max() - 80, vmax=db.max())
        ax.set(title=name, ylabel="kHz")
        ax.grid(False)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_elbo(history, path, title: str = "Training curve"):
    """Negative ELBO per epoch (train, and validation when present)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history.train_loss, label="train")
    if history.val_loss:
        ax.plot(history.val_loss, label="validation")
    ax.set(title=title, xlabel="epoch", ylabel="loss = -ELBO")
    ax.legend()
    return save_figure(fig, path)


def plot_mixture_fit(data: np.ndarray, responsibilities: np.ndarray, locs: np.ndarray, true_locs, path,
                     title: str = "Gaussian mixture fitted by SVI with enumerated assignments"):
    """2-D points coloured by their responsibilities (RGB mix), fitted means (x) and true means (+)."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    colors = np.asarray(PALETTE[: responsibilities.shape[1]])
    ax.scatter(data[:, 0], data[:, 1], c=np.clip(responsibilities @ colors, 0, 1), s=12, alpha=0.8)
    ax.scatter(locs[:, 0], locs[:, 1], marker="x", s=150, c="k", label="fitted means")
    if true_locs is not None:
        ax.scatter(true_locs[:, 0], true_locs[:, 1], marker="+", s=150, c="r", label="true means")
    ax.set(title=title + "\n(colour = posterior responsibilities from compute_marginals)")
    ax.legend()
    return save_figure(fig, path)


def plot_fusion(y: np.ndarray, p: np.ndarray, attention: np.ndarray, names: list[str], path,
                experts: np.ndarray | None = None, corrupted: dict[str, np.ndarray] | None = None,
                title: str = "Which sensor to trust", signals: dict[str, np.ndarray] | None = None):
    """One sequence: the label y (T,), the fused P(y=1) (T,), each expert's P(y=1) (T, M) if given, and the
    gate's attention (T, M) as stacked areas; frames where a sensor is corrupted (name -> (T,) bool) are shaded
    in that sensor's colour. ``signals`` (label -> (T * k,) samples, k per frame, in standard units), if given,
    are drawn on top, one above the other, clipped at +-3."""
    T, frames = len(y), np.arange(len(y))
    rows = 2 + (experts is not None) + (signals is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows), sharex=True)

    def shade(ax):
        for name, mask in (corrupted or {}).items():
            colour = PALETTE[names.index(name) % 10]
            for start, stop in _runs(np.asarray(mask, bool)):
                ax.axvspan(start - 0.5, stop - 0.5, color=colour, alpha=0.15, lw=0)

    if signals:
        ax, axes = axes[0], axes[1:]
        for row, (label, trace) in enumerate(signals.items()):
            k = len(trace) / T
            ax.plot((np.arange(len(trace)) + 0.5) / k - 0.5, np.clip(trace, -3, 3) - 7 * row, color="0.2", lw=0.6)
        ax.set_yticks([-7 * row for row in range(len(signals))], list(signals), fontsize=8)

    axes[0].fill_between(frames, 0, y, step="mid", color="0.8", label="label y")
    axes[0].plot(frames, p, color="k", lw=1.5, label="fused P(y=1)")
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].legend(loc="upper right", fontsize=8, ncol=2)
    if experts is not None:
        for m, name in enumerate(names):
            axes[1].plot(frames, experts[:, m], color=PALETTE[m % 10], lw=1, label=f"expert {name}")
        axes[1].set_ylim(-0.05, 1.05)
        axes[1].set_ylabel("P(y=1)")
        axes[1].legend(loc="upper right", fontsize=8, ncol=len(names))
    axes[-1].stackplot(frames, attention.T, colors=[PALETTE[m % 10] for m in range(len(names))], labels=names,
                       alpha=0.85)
    axes[-1].set_ylim(0, 1)
    axes[-1].set_ylabel("attention")
    axes[-1].set_xlabel("frame")
    axes[-1].legend(loc="upper right", fontsize=8, ncol=len(names))
    for ax in fig.axes:  # the signals' panel too
        shade(ax)
        ax.set_xlim(-0.5, T - 0.5)
    fig.axes[0].set_title(title + (" (shaded: corrupted sensor)" if corrupted else ""))
    return save_figure(fig, path)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_imputation(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, hidden: np.ndarray, path,
                    others: dict[str, np.ndarray] | None = None, dims: int = 2, title: str = "Imputed sensor"):
    """One sequence: the first ``dims`` dimensions of the true target frames (T, D), the imputed mean +- 2 std,
    frames where the target was hidden from the model shaded; above them, the sensors it saw (T, D_m)."""
    rows = len(others or {}) + min(dims, truth.shape[-1])
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.6 * rows + 0.4), sharex=True, squeeze=False)
    axes, frames = axes[:, 0], np.arange(len(truth))
    for ax, (name, x) in zip(axes, (others or {}).items()):
        ax.plot(frames, x[:, :3], lw=0.8)
        ax.set_ylabel(f"{name}\n(seen)", fontsize=8)
    for d, ax in enumerate(axes[len(others or {}):]):
        ax.fill_between(frames, mean[:, d] - 2 * std[:, d], mean[:, d] + 2 * std[:, d], color=PALETTE[1], alpha=0.3,
                        lw=0, label="imputed ± 2 std")
        ax.plot(frames, mean[:, d], color=PALETTE[1], lw=1.2, label="imputed mean")
        ax.plot(frames, truth[:, d], color="k", lw=0.8, label="truth")
        ax.set_ylabel(f"target dim {d}", fontsize=8)
        for start, stop in _runs(np.asarray(hidden, bool)):
            ax.axvspan(start - 0.5, stop - 0.5, color="0.85", lw=0, zorder=0)
    axes[-1].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1].set_xlabel("frame")
    axes[0].set_title(title + " (shaded: target hidden from the model)")
    return save_figure(fig, path)
