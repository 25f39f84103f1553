"""Numerical twins of the authors' published pretrained DVAE networks.

Each twin recomputes, from a raw PyTorch state dict and with plain tensor operations only (``F.linear``,
``torch.tanh``, ``torch.sigmoid``, a hand-written LSTM cell loop), what the reference network computes, so a
test can check that our own imported model gives the same numbers.  Nothing here builds an ``nn`` module or
calls ``load_state_dict``: the twin must stay independent of the code it checks.  The maths below was read
from the reference repositories (XiaoyuBIE1994/DVAE_SE @ 9cba4f3, linxiaoyu1/MixDVAE @ 5037b42); no code of
theirs is copied.  The state dicts are third-party GPL weights: tests read them from
``../shared/data/reference_priors/`` (beside the repository) and never copy them into this repository.

Conventions of every twin
-------------------------
* ``x`` is (B, T, x_dim) in the layout the reference ``forward`` receives after its front end (the reference
  itself is time-major (T, B, D); the twin transposes internally).  ``z`` is (B, T, z_dim), a given latent
  sequence: wherever the reference feeds its *sampled* z_{t-1} (into an RNN or an MLP), the twin feeds
  ``z[:, t-1]``, with z_{-1} = 0 (the reference's zero start, first frame t = 0).  "Teacher forcing" in z.
* ``LSTM(.)`` is PyTorch's cell: gates = W_ih u + b_ih + W_hh h + b_hh split in the order (i, f, g, o);
  c' = sig(f) c + sig(i) tanh(g); h' = sig(o) tanh(c'); zero initial (h, c).  A "backward" LSTM below runs
  t = T-1 .. 0 and its output at t has consumed u_{T-1} .. u_t.
* Every hidden dense layer is ``tanh(W u + b)`` (all configs have activation = tanh, dropout 0); the output
  heads (``inf_*``, ``prior_*``, ``gen_*``) are plain affine maps.  [a, b] is concatenation in that order.
* Computation is in float64; outputs are cast back to ``x.dtype`` (pass float64 inputs to get float64).

Returned keys: ``q_loc``/``q_logvar`` (inference q(z_t | x, z_{t-1})), ``p_loc``/``p_logvar`` (prior; zeros
for the VAE and the RVAE, whose prior is N(0, I)), ``dec`` (the decoder output: the log-variance of the
speech power for the speech models; for MOT ``cat([mean, logvar], -1)``).

Per kind
--------
``dvae_se_vae`` (src/model/vae.py; dense_x_z = 128):
    q:   e_t = tanh(L0 x_t);  q_loc = inf_mean(e_t), q_logvar = inf_logvar(e_t)       (frame-wise)
    dec: d_t = tanh(mlp_z_x.L0 z_t);  dec = gen_logvar(d_t)
    p = N(0, I) (the reference sets z_mean_p = z_logvar_p = 0).

``dvae_se_dkf`` (src/model/dkf.py; bidir_gx = False):
    a_t = tanh(mlp_x_gx.L0 x_t) (256);  g = BACKWARD LSTM rnn_gx over a (the reference runs the LSTM on
    flip(a) and flips the output back), so g_t has read x_{T-1} .. x_t.
    m_t = tanh(linear_last(tanh(linear0 z_{t-1})))  (mlp_ztm1_g: 16 -> 32 -> 128, tanh after BOTH layers;
          note m_0 = tanh(linear_last(tanh(b0))) is not zero)
    gbar_t = (m_t + g_t) / 2;  e_t = tanh(mlp_g_z.L0 gbar_t) (32);  q_loc/q_logvar = inf_mean/inf_logvar(e_t)
    prior (gated transition, on u = z_{t-1}):
        gate = sigmoid(gate.L2 relu(gate.L1 u));  prop = z_prop.L2 relu(z_prop.L1 u)
        p_loc = (1 - gate) * prior_mean(u) + gate * prop
        p_logvar = log(softplus(prior_logvar.1(relu(prop))))   (softplus beta 1, threshold 20; the variance
                   head reads relu(prop), not u)
    dec: tanh chain mlp_z_x (16 -> 32 -> 64 -> 128 -> 256, tanh after each) then gen_logvar.

``dvae_se_rvae`` (src/model/rvae.py; RVAE-NonCausal: bidir_g_x = bidir_h = True, every dense_* empty, i.e.
    Identity):
    g^x: the reference computes g_x = flip(BiLSTM_{rnn_g_x}(flip(x))) -- the flip is applied even though the
    LSTM is bidirectional.  Worked out: g^x_t = [b_t, f_t] where
        b_t = output at t of the *forward-direction* weights (``*_l0``) run BACKWARD in time (read x_{T-1}..x_t)
        f_t = output at t of the *reverse-direction* weights (``*_l0_reverse``) run FORWARD in time (read
              x_0..x_t).
    So the first 128 channels are anti-causal and come from ``_l0``; the last 128 are causal and come from
    ``_l0_reverse`` -- the opposite of what the parameter names suggest.
    g^z_t = LSTM_{rnn_g_z}(z_{t-1}) stepped forward, z_{-1} = 0 (so g^z_0 = one LSTM step on a zero input,
          not zero).
    q_loc/q_logvar = inf_mean/inf_logvar([g^x_t, g^z_t])    (384 = 256 + 128, g^x first)
    dec: h = BiLSTM_{rnn_h}(z) with no flip: h_t = [forward ``_l0`` output (read z_0..z_t),
         backward ``_l0_reverse`` output (read z_{T-1}..z_t)];  dec = gen_logvar(h_t)   (256 -> 513)
    p = N(0, I).

``dvae_se_srnn`` (src/model/srnn.py and src/model_ss/srnn_ss.py; tag SRNN-ss) and ``mixdvae_srnn_scass``
    (MixDVAE models/srnn_dvae_single_scass.py and models/srnn_dvae_vem_scass.py; same maths, key names
    ``linear_0``, ``inf_z_*``, ``prior_z_*``, ``gen_x``):
    x_{-1} = 0;  h_t = LSTM_{rnn_h}(tanh(mlp_x_h.L0 x_{t-1}))  forward, so h_t has read x_{-1}=0, x_0..x_{t-1}
    a_t = tanh(mlp_hx_g.L0 [h_t, x_t])  (641 = 128 + 513, h first);  g = BACKWARD LSTM rnn_g over a
          (flip / LSTM / flip in the reference), g_t has read a_{T-1}..a_t
    q:   e_t = tanh(L1 tanh(L0 [g_t, z_{t-1}]))  (mlp_gz_z 144 -> 64 -> 32);  q_loc/q_logvar = inf heads(e_t)
    p:   r_t = tanh(L1 tanh(L0 [h_t, z_{t-1}]))  (mlp_hz_z 144 -> 64 -> 32);  p_loc/p_logvar = prior heads(r_t)
    dec: d_t = tanh(mlp_hz_x.L0 [h_t, z_t])  (144 -> 256);  dec = gen_logvar(d_t) (DVAE_SE) / gen_x(d_t)
         (MixDVAE), the log-variance of the source power.
    This is the TEACHER-FORCED path: h from the input x_{t-1} (srnn.py forward; srnn_ss.py with
    use_pred = 0; MixDVAE ``decoder_tf`` / ``vem_initialization``).  CAUTION: both published speech SRNNs were
    trained with scheduled sampling, and DVAE_SE's own evaluation and enhancement build ``SRNN_ss`` and call
    it with the default use_pred = 1 (eval_speech.py; src/se/enhancement.py -> em_algorithm.VEM, which also
    calls ``generation_x(Z)`` directly).  There the DECODER and the PRIOR use a free-running h^gen instead:
    h^gen_t = LSTM_{rnn_h}(tanh(mlp_x_h.L0 xhat_{t-1})) with xhat_{-1} = 0 and xhat_{t-1} = exp(dec_{t-1})
    (the decoder's own variance fed back, detached), dec_t = gen([h^gen_t, z_t]),
    p from [h^gen_t, z_{t-1}].  The inference network still uses the teacher-forced h from x.  At t = 0 the
    two paths agree.  ``reference_srnn_free_running`` below computes that variant.

``mixdvae_srnn_mot`` (MixDVAE models/srnn_dvae_single_mot.py, pretraining, and models/srnn_dvae_vem_mot.py,
    tracking; no rnn_g, no mlp_hx_g although the cfg lists dense_hx_g = 12):
    x_{-1} = 0;  h_t = LSTM_{rnn_h}(tanh(mlp_x_h.linear_0 x_{t-1}))  (4 -> 4, LSTM 8)
    q:   e_t = tanh(L1 tanh(L0 [h_t, x_t, z_{t-1}]))  (16 = 8 + 4 + 4 in that order -> 16 -> 8)
         q_loc/q_logvar = inf_z_mean/inf_z_logvar(e_t).  The encoder is CAUSAL (no backward RNN): q(z_t) sees
         only x_0..x_t.
    p:   r_t = tanh(L1 tanh(L0 [h_t, z_{t-1}]))  (12 -> 8 -> 8);  prior_z_mean/prior_z_logvar(r_t)
    dec: d_t = tanh(mlp_hz_x.linear_0 [h_t, z_t])  (12 -> 16);  mean = gen_x_mean(d_t), logvar =
         gen_x_logvar(d_t); ``dec`` = cat([mean, logvar], -1).  The mean is NOT residual: nothing adds x_{t-1}
         (the reference ``forward`` returns cat([mean, exp(logvar)]); we return the log-variance as asked).
    Teacher-forced path again (``decoder_tf``).  The cfg has schedule_sampling = True, so pretraining used
    ``decoder_ss``: free-running h^gen fed with a *sample* of N(mean, exp(logvar)).  In tracking
    (srnn_dvae_vem_mot.decoder_vem) the decoder is fed frame0 (the first detection) at t = 0 instead of zero,
    replaces the t = 0 output by (frame0, variance 1e-5), and afterwards feeds back the VEM posterior mean
    of the box; the encoder reads the previous iteration's posterior means with x_{-1} = 0.

Front ends (what the networks read)
-----------------------------------
DVAE_SE (all four WSJ0 models; config.ini [STFT]: wlen_sec 64e-3, hop_percent 0.25, fs 16000, zp 0, trim):
* STFT: wlen = 2**ceil(log2(0.064 * 16000)) = 1024, hop = 256, n_fft = 1024 (no zero padding), sine window
  w[n] = sin(pi (n + 0.5) / 1024), centred frames -> 513 bins.  Input is the POWER |STFT|^2 (no log, no
  mean/variance normalisation); the output is log-variance, trained with the Itakura-Saito loss
  (src/learning_algo.py, learning_algo_ss.py: exp(model(x)) vs x).
* Training (src/dataset/speech_dataset.py, SpeechSequencesFull since use_random_seq = False): 16 kHz wav read
  with soundfile; trim=True -> librosa.effects.trim(x, top_db=30) gives (ind_beg, ind_end); the utterance
  is cut into consecutive, non-overlapping pieces of (50 - 1) * 256 = 12544 samples starting at ind_beg
  (n_seq = (1 + int(len / 256)) // 50); EACH PIECE is normalised x / max|x| on its own; then
  torch.stft(n_fft=1024, hop_length=256, win_length=1024, window=sine, center=True, pad_mode='reflect',
  normalized=False, onesided=True) -> 50 frames; power re^2 + im^2 cast to float32, item (513, 50);
  the batch (B, 513, 50) is permuted to (50, B, 513) before the model (learning_algo*.py).
* Resynthesis evaluation (eval_speech.py): whole utterance, librosa.effects.trim(top_db=30) applied to the
  waveform, x / max|x| of the trimmed utterance, librosa.stft(n_fft=1024, hop=256, win_length=1024, sine
  window; librosa's default center=True), power, fed as (T, 1, 513); the SRNN is built as SRNN_ss.
* Enhancement (src/se/enhancement.py): noisy file x / max|x| over the whole file, no trim, librosa.stft
  as above; the VEM feeds |X|^2 transposed to (N, 1, 513).
* librosa.stft's default pad_mode was 'reflect' before librosa 0.10 and is 'constant' (zeros) since;
  DVAE_SE pins no librosa version, so eval/enhancement edge frames depend on it (training used torch.stft
  with reflect padding).

MixDVAE speech/music (cfg_dvae_single_scass_wsj.ini, _cbf.ini; data/scass_dataset.py):
* Same STFT (1024 / 256 / 1024, sine window np.sin(np.arange(0.5, 1024.5) / 1024 * pi)), computed with
  librosa.stft (default center=True; requirements.txt leaves librosa unpinned, torch 1.13.1), power
  |X|^2 as float32, no log.  Pretraining (SpeechSequencesFull): trim=True via
  librosa.effects.trim(top_db=30) indices, 12544-sample consecutive pieces, each normalised by its own
  max|x|.  The model's forward permutes the (B, 513, T) batch with x.permute(2, 0, 1) -> (T, B, 513).
  CBF (bamboo flute) uses the same pipeline with dataset_name CBF.
* Separation VEM (cfg_dvae_vem_scass.ini: trim = False; SpeechSequencesVEM): 50-frame pieces of the
  mixture .npz; the mixture AND both references are divided by max|mixture piece|; librosa.stft of the
  normalised mixture; models/vem_scass.py permutes it to (B, T, F), takes |X|^2 and initialises each
  source with ``vem_initialization`` (encoder + teacher-forced decoder on the MIXTURE power), v_x = 0.03
  |x|^2.

MixDVAE MOT (cfg_dvae_single_mot.ini, cfg_dvae_vem_mot.ini, data/mot_dataset.py):
* Box order is (x1, y1, x2, y2) with x1 = x_left, y1 = y_top, x2 = x_left + w, y2 = y_top - h (sic: MINUS
  h, so y2 < y1 in image coordinates; data/mot_tracking_data_generation.py for MOT17 ground truth and
  detections, data/mot_generate_synthetic_data.py for the synthetic training boxes
  (x, y, x + w, y - w * ratio)); utils/utils.py converts back with w = x2 - x1, h = y1 - y2.
* Normalisation is one fixed affine map per coordinate, (v - lo) / (hi - lo) with ``normalize_range`` read
  as two rows of four (data/mot_dataset.py): for tracking hi = (1920, 1080, 1920, 1080), lo = 0, i.e.
  x / 1920 and y / 1080 regardless of the sequence's real frame size (not per-frame, not per-track); for
  pretraining hi = 1, lo = 0 (identity), because the synthetic trajectories are generated directly in
  normalised units (start point ~ U(0, 1), filtered to stay roughly in the frame).
* The model reads (B, T, 4) and permutes it with x.permute(1, 0, 2) to (T, B, 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("dvae_se_vae", "dvae_se_dkf", "dvae_se_rvae", "dvae_se_srnn", "mixdvae_srnn_mot", "mixdvae_srnn_scass")


# --------------------------------------------------------------------------------------------- primitives
class _Weights:
    """Read-only float64 view of a state dict, with a clear error for a missing key."""

    def __init__(self, state: dict):
        self._state = state

    def __call__(self, name: str) -> torch.Tensor:
        if name not in self._state:
            raise KeyError(f"state dict has no '{name}' (keys: {sorted(self._state)[:8]} ...)")
        return self._state[name].detach().to("cpu", torch.float64)

    def has(self, name: str) -> bool:
        return name in self._state

    def affine(self, prefix: str, u: torch.Tensor) -> torch.Tensor:
        return F.linear(u, self(prefix + ".weight"), self(prefix + ".bias"))

    def tanh_layers(self, prefixes, u: torch.Tensor) -> torch.Tensor:
        for p in prefixes:
            u = torch.tanh(self.affine(p, u))
        return u


def _lstm(w: _Weights, prefix: str, suffix: str, u: torch.Tensor, backward: bool = False) -> torch.Tensor:
    """One LSTM layer over time-major u (T, B, D) -> outputs (T, B, H), zero initial state.

    ``backward`` runs t = T-1 .. 0; out[t] is then the state after reading u[T-1] .. u[t]."""
    w_ih, w_hh = w(f"{prefix}.weight_ih_l0{suffix}"), w(f"{prefix}.weight_hh_l0{suffix}")
    bias = w(f"{prefix}.bias_ih_l0{suffix}") + w(f"{prefix}.bias_hh_l0{suffix}")
    hidden = w_hh.shape[1]
    steps, batch = u.shape[0], u.shape[1]
    h = u.new_zeros(batch, hidden)
    c = u.new_zeros(batch, hidden)
    out = u.new_zeros(steps, batch, hidden)
    pre = F.linear(u, w_ih, bias)  # input part of the gates for every t at once
    order = range(steps - 1, -1, -1) if backward else range(steps)
    for t in order:
        h, c = _lstm_cell(pre[t], h, c, w_hh)
        out[t] = h
    return out


def _lstm_cell(pre_t, h, c, w_hh):
    gates = pre_t + F.linear(h, w_hh)
    i, f, g, o = gates.chunk(4, dim=-1)  # PyTorch order
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class _LSTMStepper:
    """Step-by-step LSTM (for recurrences whose input depends on the previous output)."""

    def __init__(self, w: _Weights, prefix: str, batch: int):
        self.w_ih = w(f"{prefix}.weight_ih_l0")
        self.w_hh = w(f"{prefix}.weight_hh_l0")
        self.bias = w(f"{prefix}.bias_ih_l0") + w(f"{prefix}.bias_hh_l0")
        hidden = self.w_hh.shape[1]
        self.h = torch.zeros(batch, hidden, dtype=torch.float64)
        self.c = torch.zeros(batch, hidden, dtype=torch.float64)

    def __call__(self, u_t):
        self.h, self.c = _lstm_cell(F.linear(u_t, self.w_ih, self.bias), self.h, self.c, self.w_hh)
        return self.h


def _shift(v: torch.Tensor) -> torch.Tensor:
    """Time-major v (T, B, D) -> v_{t-1} with a zero first frame."""
    return torch.cat([torch.zeros_like(v[:1]), v[:-1]], 0)


# --------------------------------------------------------------------------------------------- the models
def _vae(w, x, z):
    e = w.tanh_layers(["mlp_x_z.linear0"], x)
    d = w.tanh_layers(["mlp_z_x.linear0"], z)
    q_loc, q_logvar = w.affine("inf_mean", e), w.affine("inf_logvar", e)
    return dict(q_loc=q_loc, q_logvar=q_logvar, p_loc=torch.zeros_like(q_loc), p_logvar=torch.zeros_like(q_loc),
                dec=w.affine("gen_logvar", d))


def _dkf(w, x, z):
    if w.has("rnn_gx.weight_ih_l0_reverse"):
        raise NotImplementedError("twin covers the published DKF (bidir_gx = False) only")
    a = w.tanh_layers(["mlp_x_gx.linear0"], x)
    g = _lstm(w, "rnn_gx", "", a, backward=True)
    z_prev = _shift(z)
    m = w.tanh_layers(["mlp_ztm1_g.linear0", "mlp_ztm1_g.linear_last"], z_prev)
    e = w.tanh_layers(["mlp_g_z.linear0"], (m + g) / 2)
    gate = torch.sigmoid(w.affine("mlp_gate.linear2", torch.relu(w.affine("mlp_gate.linear1", z_prev))))
    prop = w.affine("mlp_z_prop.linear2", torch.relu(w.affine("mlp_z_prop.linear1", z_prev)))
    p_loc = (1 - gate) * w.affine("prior_mean", z_prev) + gate * prop
    p_logvar = torch.log(F.softplus(w.affine("prior_logvar.1", torch.relu(prop))))
    d = w.tanh_layers([f"mlp_z_x.linear{n}" for n in range(4)], z)
    return dict(q_loc=w.affine("inf_mean", e), q_logvar=w.affine("inf_logvar", e), p_loc=p_loc, p_logvar=p_logvar,
                dec=w.affine("gen_logvar", d))


def _rvae(w, x, z):
    if not (w.has("rnn_g_x.weight_ih_l0_reverse") and w.has("rnn_h.weight_ih_l0_reverse")):
        raise NotImplementedError("twin covers the published non-causal RVAE (both BiLSTMs) only")
    # reference: flip(BiLSTM(flip(x))): the "_l0" direction ends up anti-causal, "_l0_reverse" causal
    anti = _lstm(w, "rnn_g_x", "", x, backward=True)
    causal = _lstm(w, "rnn_g_x", "_reverse", x, backward=False)
    g_x = torch.cat([anti, causal], -1)
    g_z = _lstm(w, "rnn_g_z", "", _shift(z))  # stepped on z_{t-1}, z_{-1} = 0
    both = torch.cat([g_x, g_z], -1)
    # decoder: plain BiLSTM over z, no flip
    h = torch.cat([_lstm(w, "rnn_h", "", z), _lstm(w, "rnn_h", "_reverse", z, backward=True)], -1)
    q_loc = w.affine("inf_mean", both)
    return dict(q_loc=q_loc, q_logvar=w.affine("inf_logvar", both), p_loc=torch.zeros_like(q_loc),
                p_logvar=torch.zeros_like(q_loc), dec=w.affine("gen_logvar", h))


_SRNN_NAMES = {
    # kind: (layer separator, inference heads, prior heads, decoder head)
    "dvae_se_srnn": ("linear", ("inf_mean", "inf_logvar"), ("prior_mean", "prior_logvar"), "gen_logvar"),
    "mixdvae_srnn_scass": ("linear_", ("inf_z_mean", "inf_z_logvar"), ("prior_z_mean", "prior_z_logvar"), "gen_x"),
}


def _srnn_h(w, lin, x):
    return _lstm(w, "rnn_h", "", w.tanh_layers([f"mlp_x_h.{lin}0"], _shift(x)))


def _srnn_speech(kind, w, x, z):
    lin, inf, pri, gen = _SRNN_NAMES[kind]
    h = _srnn_h(w, lin, x)
    a = w.tanh_layers([f"mlp_hx_g.{lin}0"], torch.cat([h, x], -1))
    g = _lstm(w, "rnn_g", "", a, backward=True)
    z_prev = _shift(z)
    e = w.tanh_layers([f"mlp_gz_z.{lin}0", f"mlp_gz_z.{lin}1"], torch.cat([g, z_prev], -1))
    r = w.tanh_layers([f"mlp_hz_z.{lin}0", f"mlp_hz_z.{lin}1"], torch.cat([h, z_prev], -1))
    d = w.tanh_layers([f"mlp_hz_x.{lin}0"], torch.cat([h, z], -1))
    return dict(q_loc=w.affine(inf[0], e), q_logvar=w.affine(inf[1], e), p_loc=w.affine(pri[0], r),
                p_logvar=w.affine(pri[1], r), dec=w.affine(gen, d))


def _srnn_mot(w, x, z):
    h = _srnn_h(w, "linear_", x)
    z_prev = _shift(z)
    e = w.tanh_layers(["mlp_gz_z.linear_0", "mlp_gz_z.linear_1"], torch.cat([h, x, z_prev], -1))
    r = w.tanh_layers(["mlp_hz_z.linear_0", "mlp_hz_z.linear_1"], torch.cat([h, z_prev], -1))
    d = w.tanh_layers(["mlp_hz_x.linear_0"], torch.cat([h, z], -1))
    dec = torch.cat([w.affine("gen_x_mean", d), w.affine("gen_x_logvar", d)], -1)
    return dict(q_loc=w.affine("inf_z_mean", e), q_logvar=w.affine("inf_z_logvar", e),
                p_loc=w.affine("prior_z_mean", r), p_logvar=w.affine("prior_z_logvar", r), dec=dec)


# --------------------------------------------------------------------------------------------- public API
def _check(kind, x, z):
    if kind not in KINDS:
        raise ValueError(f"unknown kind '{kind}', expected one of {KINDS}")
    if x.dim() != 3 or z.dim() != 3 or x.shape[:2] != z.shape[:2]:
        raise ValueError(f"x and z must be (B, T, D) with the same B, T; got {tuple(x.shape)}, {tuple(z.shape)}")


def reference_forward(kind: str, state: dict, x: torch.Tensor, z: torch.Tensor) -> dict:
    """kind in {"dvae_se_vae", "dvae_se_dkf", "dvae_se_rvae", "dvae_se_srnn", "mixdvae_srnn_mot", "mixdvae_srnn_scass"}.
    x: (B, T, x_dim) the network input exactly as the reference model's forward receives it (after whatever
       front end; note reference code is time-major (T, B, D) - transpose internally).
    z: (B, T, z_dim) a given latent sequence (teacher forcing: wherever the reference feeds a sampled z_{t-1}
       into a recurrence or MLP, use z[:, t-1] from this argument, z_0 = zeros).
    Returns a dict of (B, T, D) tensors:
      "q_loc", "q_logvar": the inference network's mean and log-variance of z_t at every t (given x and z_{<t});
      "p_loc", "p_logvar": the prior's mean/log-variance of z_t (given z_{t-1} and, for SRNN, h_t); for the VAE
                           and the RVAE (standard normal prior) return zeros for both;
      "dec": the decoder's output for every t given z (and for SRNN h_t from x_{t-1}): the log-variance of the
             speech power for speech models; for the MOT model torch.cat([mean, logvar], -1) exactly as
             the reference computes the Gaussian's mean and log-variance (the MOT mean is NOT residual: the
             reference adds nothing such as x_{t-1} to it).
    The SRNN kinds follow the teacher-forced path (h_t from the given x_{t-1}); see the module docstring and
    ``reference_srnn_free_running`` for the scheduled-sampling decoder the reference evaluates with.
    """
    _check(kind, x, z)
    w = _Weights(state)
    xt = x.detach().to("cpu", torch.float64).transpose(0, 1)
    zt = z.detach().to("cpu", torch.float64).transpose(0, 1)
    if kind == "dvae_se_vae":
        out = _vae(w, xt, zt)
    elif kind == "dvae_se_dkf":
        out = _dkf(w, xt, zt)
    elif kind == "dvae_se_rvae":
        out = _rvae(w, xt, zt)
    elif kind == "mixdvae_srnn_mot":
        out = _srnn_mot(w, xt, zt)
    else:
        out = _srnn_speech(kind, w, xt, zt)
    return {k: v.transpose(0, 1).to(x.dtype).contiguous() for k, v in out.items()}


def reference_srnn_free_running(kind: str, state: dict, z: torch.Tensor, eps: torch.Tensor | None = None) -> dict:
    """The scheduled-sampling decoder at use_pred = 1 (DVAE_SE ``SRNN_ss.generation_x`` as used by
    eval_speech.py and the enhancement VEM; MixDVAE ``decoder_ss``): h^gen is driven by the decoder's own
    previous output instead of the data, starting from a zero frame.

    Speech kinds ("dvae_se_srnn", "mixdvae_srnn_scass"): xhat_{t-1} = exp(dec_{t-1}) (deterministic).
    "mixdvae_srnn_mot": the reference feeds back a SAMPLE mean + exp(logvar / 2) * eps; pass the (B, T, 4)
    noise ``eps`` to reproduce a draw (default zeros, i.e. the mean is fed back).
    Returns (B, T, D) tensors "dec" (as in ``reference_forward``), "p_loc"/"p_logvar" (the prior on
    [h^gen_t, z_{t-1}], as the reference's forward computes it in this mode) and "h" (h^gen).
    """
    if kind not in ("dvae_se_srnn", "mixdvae_srnn_scass", "mixdvae_srnn_mot"):
        raise ValueError(f"free-running decoder only exists for the SRNN kinds, not '{kind}'")
    w = _Weights(state)
    zt = z.detach().to("cpu", torch.float64).transpose(0, 1)
    steps, batch = zt.shape[0], zt.shape[1]
    if kind == "mixdvae_srnn_mot":
        lin, pri, x_dim = "linear_", ("prior_z_mean", "prior_z_logvar"), w("gen_x_mean.weight").shape[0]
        noise = torch.zeros(steps, batch, x_dim, dtype=torch.float64) if eps is None else \
            eps.detach().to("cpu", torch.float64).transpose(0, 1)
    else:
        lin, _, pri, gen = _SRNN_NAMES[kind]
        x_dim = w(gen + ".weight").shape[0]
    rnn = _LSTMStepper(w, "rnn_h", batch)
    x_prev = torch.zeros(batch, x_dim, dtype=torch.float64)
    hs, decs = [], []
    for t in range(steps):
        h_t = rnn(w.tanh_layers([f"mlp_x_h.{lin}0"], x_prev))
        d_t = w.tanh_layers([f"mlp_hz_x.{lin}0"], torch.cat([h_t, zt[t]], -1))
        if kind == "mixdvae_srnn_mot":
            mean, logvar = w.affine("gen_x_mean", d_t), w.affine("gen_x_logvar", d_t)
            dec_t = torch.cat([mean, logvar], -1)
            x_prev = mean + torch.exp(0.5 * logvar) * noise[t]
        else:
            dec_t = w.affine(gen, d_t)
            x_prev = torch.exp(dec_t)
        hs.append(h_t)
        decs.append(dec_t)
    h = torch.stack(hs)
    r = w.tanh_layers([f"mlp_hz_z.{lin}0", f"mlp_hz_z.{lin}1"], torch.cat([h, _shift(zt)], -1))
    out = dict(dec=torch.stack(decs), p_loc=w.affine(pri[0], r), p_logvar=w.affine(pri[1], r), h=h)
    return {k: v.transpose(0, 1).to(z.dtype).contiguous() for k, v in out.items()}
