r"""Causal evidence of a failing sensor, for the gate of the attention mixtures (``gate_evidence``).

A sensor that fails (lead off: a flat line; motion: large slow swings and spikes) changes the statistics of its
own stream before it changes anything a per-sensor expert was trained to read. For each sensor m with frames
x^m_t (D samples or features each) the gate gets, for each time constant tau, the logarithms of three
exponentially weighted running means over frames s <= t, weights proportional to a^(t-s), a = 1 - 1/tau,
normalised by their sum (so the first frames are not biased towards 0):

    energy   mean_d (x^m_{s,d})^2                         high under motion, ~level^2 on a flat line
    change   mean_d (x^m_{s,d} - x^m_{s-1,d})^2            frame-to-frame change, x_0 = x_1
    detail   var_d x^m_{s,d}                              spread inside a frame: ~0 on a flat line

each as log(. + 1e-4). Every statistic at t reads frames up to t only: the mixture stays online.

Optional (``snr=True``, model names ``*+evidence+snr``): one more number per sensor, a minimum-statistics
signal-to-floor estimate (Martin 2001): smooth each feature, track its causal running minimum over the last
W = ``FLOOR_FRAMES`` frames (the floor the feature falls back to between bursts of signal), and average the
height above it over the features:

    S_{t,d} = running mean of x^m_{.,d} with tau = 3 (as above)
    snr^m_t = mean_d ( S_{t,d} - min_{max(1, t-W+1) <= s <= t} S_{s,d} )

On features that are log band energies (the speech-activity audio) S - min S is the a-posteriori SNR of each
band in log units: speech over a quiet floor rises far above it, speech under a loud noise hardly does.
"""

from __future__ import annotations

import torch

TIME_CONSTANTS = (3.0, 12.0)  # frames
STATISTICS = 3
FLOOR_FRAMES = 128  # W, frames of the noise-floor track (2 s at the speech sets' 62.5 frames/s)


def running_mean(v: torch.Tensor, tau: float) -> torch.Tensor:
    """Normalised causal exponential moving average of v (N, T, F) along T: sum_s<=t a^(t-s) v_s / sum_s<=t a^(t-s)."""
    T = v.shape[1]
    t = torch.arange(T, device=v.device, dtype=v.dtype)
    lag = t[:, None] - t[None, :]  # (T, T): t - s
    weights = torch.where(lag >= 0, (1 - 1 / tau) ** lag.clamp_min(0), torch.zeros_like(lag))
    weights = weights / weights.sum(1, keepdim=True)
    return torch.einsum("ts,nsf->ntf", weights, v)


def running_minimum(v: torch.Tensor, frames: int = FLOOR_FRAMES) -> torch.Tensor:
    """min_{t-frames < s <= t} v_s along T of v (N, T, F): windows doubled up to the largest power of 2 p <= frames,
    then the window ending at t joined with the one ending at t - (frames - p) (they overlap)."""
    def delayed(u, lag):  # u_{t-lag}, +inf before the start
        return torch.cat([torch.full_like(u[:, :lag], float("inf")), u[:, :-lag]], 1)[:, :u.shape[1]]

    span = 1
    while 2 * span <= frames:
        v, span = torch.minimum(v, delayed(v, span)), 2 * span
    return torch.minimum(v, delayed(v, frames - span)) if frames > span else v


def signal_to_floor(x: torch.Tensor, frames: int = FLOOR_FRAMES) -> torch.Tensor:
    """(N, T, D) frames of one sensor -> (N, T, 1) snr_t of the module doc."""
    smooth = running_mean(x, TIME_CONSTANTS[0])
    return (smooth - running_minimum(smooth, frames)).mean(-1, keepdim=True)


def causal_statistics(x: torch.Tensor, time_constants=TIME_CONSTANTS, snr: bool = False) -> torch.Tensor:
    """(N, T, D) frames of one sensor -> (N, T, 3 * len(time_constants) (+ 1 with ``snr``)) log running
    statistics (module doc), then the signal-to-floor estimate."""
    previous = torch.cat([x[:, :1], x[:, :-1]], 1)
    per_frame = torch.stack([(x ** 2).mean(-1), ((x - previous) ** 2).mean(-1),
                             x.var(-1, unbiased=False) if x.shape[-1] > 1 else torch.zeros_like(x[..., 0])], -1)
    stats = [torch.log(running_mean(per_frame, tau) + 1e-4) for tau in time_constants]
    return torch.cat(stats + ([signal_to_floor(x)] if snr else []), -1)


def evidence_width(num_sensors: int, time_constants=TIME_CONSTANTS, snr: bool = False) -> int:
    return num_sensors * (STATISTICS * len(time_constants) + int(snr))
