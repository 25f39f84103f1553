r"""Importing the authors' published DVAE priors (plain-PyTorch state dicts) as our own checkpoints.

Two reference implementations publish pretrained priors:

* **DVAE_SE** (Bie et al., "Unsupervised speech enhancement using dynamical variational autoencoders", 2022):
  WSJ0 speech VAE, DKF, RVAE (non-causal) and SRNN, each a state dict with a ``config.ini``;
* **MixDVAE** (Lin et al., TMLR 2023): SRNN priors of trajectories (``model_mot.pt``), WSJ0 speech and
  bamboo-flute music, with ``cfg_dvae_single_*.ini``.

:func:`import_prior` reads the config, builds the same network from our own classes (the options their
configs need: dense layers, log-variance heads, the DMM's gated transition and combiner, a filtering SRNN
guide; see each class's docstring), moves every tensor across, and writes one of our checkpoints, usable
wherever a prior is (``--prior OUT.pt``). What changes on the way is only layout, never arithmetic:

* their separate mean and log-variance layers are the two halves of our head's last layer
  (``scale="logvar"``);
* the columns of a layer that reads a concatenation are reordered where we concatenate in another order
  (their SRNN heads read [h_t, z_{t-1}], ours [z_{t-1}, h_t]);
* their non-causal RVAE runs its bidirectional encoder LSTM on the time-reversed input and reverses the
  output back, so their forward-direction weights read the future and their reverse-direction ones the past:
  ours swap the two directions (and the head's columns);
* the trajectory decoder's log-variance becomes our log standard deviation (rows scaled by 1/2).

Front ends, as the references: the speech networks read the power |STFT|^2 of the peak-normalised waveform
itself, not its logarithm (``inputs="power"``; 64-ms sine window, hop 256, as ours); the trajectory network
reads boxes (x1, y1, x2, y1 - h) with the image's y axis pointing down, normalised by the frame size
(``box_frame="y-down"``; ours flip y upwards). ``tests/test_reference_priors.py`` checks every imported network
against an independent plain-tensor recomputation from the raw state dict.

The weights are the authors' (GPL): read them where they lie, never ship them with this package.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import torch

from ppl_models.dvae import build_dvae
from ppl_models.infer.checkpoint import FORMAT, CheckpointError, atomic_torch_save

SOURCES = ("dvae-se", "mixdvae")


class ReferenceImportError(ValueError):
    """A reference checkpoint or config that cannot be imported, with the reason."""


# ----------------------------------------------------------------------------------------- configs
def _ints(net, key: str) -> list[int]:
    text = net.get(key, "").strip()
    return [int(v) for v in text.split(",")] if text else []


def find_config(source: str, checkpoint: Path) -> Path:
    """The config beside a reference checkpoint: DVAE_SE's ``config.ini``, MixDVAE's ``cfg_dvae_single_X.ini``
    for ``model_X.pt``."""
    name = "config.ini" if source == "dvae-se" else f"cfg_dvae_single_{checkpoint.stem.removeprefix('model_')}.ini"
    path = checkpoint.parent / name
    if not path.is_file():
        raise ReferenceImportError(f"{checkpoint}: no {name} beside it; pass --config")
    return path


def architecture(source: str, cfg: configparser.ConfigParser, state: dict) -> tuple[str, str, dict]:
    """(our model name, kind, build_dvae options) of a reference network described by ``cfg``."""
    net = cfg["Network"]
    name = net.get("name", "").strip()
    if net.get("activation", "tanh").strip() != "tanh":
        raise ReferenceImportError(f"activation {net.get('activation')!r}: only tanh networks are supported")
    if any(net.getint(k) != 1 for k in net if k.startswith("num_rnn")):
        raise ReferenceImportError("stacked LSTMs (num_RNN_* > 1) are not supported")
    x_dim, z_dim = net.getint("x_dim"), net.getint("z_dim")
    speech = x_dim != 4
    kind = "speech" if speech else "trajectory"
    common = dict(x_dim=x_dim, z_dim=z_dim, likelihood="power" if speech else "gaussian", scale="logvar")
    if speech:
        common["inputs"] = "power"
    else:
        common["box_frame"] = "y-down"

    def same(*keys):
        values = {k: net.getint(k) for k in keys}
        if len(set(values.values())) != 1:
            raise ReferenceImportError(f"{name}: our model has one recurrence width, the config has {values}")
        return values[keys[0]]

    if name == "VAE":
        dense = _ints(net, "dense_x_z")  # the decoder mirrors the encoder
        return "vae", kind, dict(common, hidden=dense, decoder_hidden=dense[::-1])
    if name == "DKF":
        if net.getboolean("bidir_gx"):
            raise ReferenceImportError("DKF with a bidirectional encoder (bidir_gx = True) is not supported")
        return "dkf", kind, dict(common, rnn_dim=net.getint("dim_RNN_gx"), dense_x=_ints(net, "dense_x_gx"),
                                 combiner_hidden=_ints(net, "dense_ztm1_g"), hidden=_ints(net, "dense_g_z"),
                                 decoder_hidden=_ints(net, "dense_z_x"), transition="gated", combiner="average")
    if name == "RVAE":
        if not (net.getboolean("bidir_g_x") and net.getboolean("bidir_h")):
            raise ReferenceImportError("only the non-causal RVAE (bidir_g_x = bidir_h = True) is supported: the "
                                       "reference's causal one reads x backwards in its encoder")
        extra = [k for k in ("dense_x_gx", "dense_z_gz", "dense_z_h") if _ints(net, k)]
        if extra:
            raise ReferenceImportError(f"RVAE: dense layers {extra} are not supported")
        return "rvae-noncausal", kind, dict(common, rnn_dim=same("dim_RNN_g_x", "dim_RNN_g_z", "dim_RNN_h"),
                                            hidden=_ints(net, "dense_g_z"), decoder_hidden=_ints(net, "dense_h_x"))
    if name in ("SRNN", "SRNN_dvae_single"):
        backward = "rnn_g.weight_ih_l0" in state
        rnn_dim = same("dim_RNN_h", "dim_RNN_g") if backward else net.getint("dim_RNN_h")
        return "srnn", kind, dict(common, rnn_dim=rnn_dim, dense_x=_ints(net, "dense_x_h"),
                                  dense_hx=_ints(net, "dense_hx_g") if backward else [],
                                  hidden=_ints(net, "dense_gz_z"), prior_hidden=_ints(net, "dense_hz_z"),
                                  decoder_hidden=_ints(net, "dense_hz_x"), backward_guide=backward, residual=False)
    raise ReferenceImportError(f"network {name!r}: not one of VAE, DKF, RVAE, SRNN")


# ------------------------------------------------------------------------------------ state dicts
def _dense(state: dict, module: str) -> list[str]:
    """The Linear layers of a reference dense stack, in order: ``module.linear0``, ``module.linear_1``, ...,
    then ``module.linear_last`` (DVAE_SE and MixDVAE spell the index differently)."""
    found = {}
    for key in state:
        m = re.fullmatch(rf"{module}\.linear_?(\d+|last)\.weight", key)
        if m:
            found[m.group(1)] = key.removesuffix(".weight")
    order = sorted((k for k in found if k != "last"), key=int) + (["last"] if "last" in found else [])
    return [found[k] for k in order]


def _linear(state, name, cols=None):
    """(weight, bias) of the reference layer ``name``; ``cols``: a column order (reordered inputs)."""
    w, b = state[f"{name}.weight"], state[f"{name}.bias"]
    if cols is not None:
        w = w[:, cols]
    return w, b


def _heads(state, mean: str, logvar: str, cols=None, logvar_factor: float = 1.0):
    """Their mean and log-variance layers as one (weight, bias) of 2 * D outputs."""
    wm, bm = _linear(state, mean, cols)
    wv, bv = _linear(state, logvar, cols)
    return torch.cat([wm, logvar_factor * wv]), torch.cat([bm, logvar_factor * bv])


def _split(*sizes: int):
    """Column index ranges of a concatenation of blocks of these sizes: [range(0, a), range(a, a + b), ...]."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [list(range(s, s + n)) for s, n in zip(starts, sizes)]


def _lstm(state, name: str, ours: str, swap_directions: bool = False) -> dict:
    out = {}
    for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        fwd, rev = f"{name}.{key}_l0", f"{name}.{key}_l0_reverse"
        if swap_directions:
            fwd, rev = rev, fwd
        out[f"{ours}.{key}_l0"] = state[fwd]
        if f"{name}.{key}_l0_reverse" in state:
            out[f"{ours}.{key}_l0_reverse"] = state[rev]
    return out


def _put(out: dict, ours: str, layer: tuple):
    out[f"{ours}.weight"], out[f"{ours}.bias"] = layer


def _stack(out: dict, state: dict, theirs: str, ours: str, start: int = 0, cols=None) -> int:
    """Their dense stack -> our nn.Sequential ``ours`` whose Linear layers sit at start, start + 2, ...
    (a tanh between); ``cols`` reorders the first layer's inputs. Returns the index after the last."""
    for i, name in enumerate(_dense(state, theirs)):
        _put(out, f"{ours}.{start + 2 * i}", _linear(state, name, cols if i == 0 else None))
    return start + 2 * len(_dense(state, theirs))


def _vae(state, dvae):
    out = {}
    n = _stack(out, state, "mlp_x_z", "encoder.head.net")
    _put(out, f"encoder.head.net.{n}", _heads(state, "inf_mean", "inf_logvar"))
    n = _stack(out, state, "mlp_z_x", "decoder")
    _put(out, f"decoder.{n}", _linear(state, "gen_logvar"))
    return out


def _dkf(state, dvae):
    out = {}
    _stack(out, state, "mlp_x_gx", "embed_x")
    out.update(_lstm(state, "rnn_gx", "backward_rnn"))  # both run it on the time-reversed input
    _stack(out, state, "mlp_ztm1_g", "encoder.embed")
    n = _stack(out, state, "mlp_g_z", "encoder.head.net")
    _put(out, f"encoder.head.net.{n}" if n else "encoder.head.net", _heads(state, "inf_mean", "inf_logvar"))
    for ours, theirs in (("gate", "mlp_gate"), ("proposal", "mlp_z_prop")):
        _put(out, f"transition.{ours}.0", _linear(state, f"{theirs}.linear1"))
        _put(out, f"transition.{ours}.2", _linear(state, f"{theirs}.linear2"))
    _put(out, "transition.linear", _linear(state, "prior_mean"))
    _put(out, "transition.variance", _linear(state, "prior_logvar.1"))
    n = _stack(out, state, "mlp_z_x", "decoder")
    _put(out, f"decoder.{n}", _linear(state, "gen_logvar"))
    return out


def _rvae(state, dvae):
    r = dvae.x_rnn.hidden_size
    out = _lstm(state, "rnn_g_x", "x_rnn", swap_directions=True)
    out.update(_lstm(state, "rnn_g_z", "encoder.rnn"))
    out.update(_lstm(state, "rnn_h", "decoder_rnn"))
    # their head reads [anti-causal b_t, causal f_t, g^z_t]; ours [g^z_t, f_t, b_t]
    b, f, gz = _split(r, r, r)
    n = _stack(out, state, "mlp_g_z", "encoder.head.net", cols=gz + f + b)
    cols = None if n else gz + f + b
    _put(out, f"encoder.head.net.{n}" if n else "encoder.head.net", _heads(state, "inf_mean", "inf_logvar", cols))
    n = _stack(out, state, "mlp_h_x", "decoder")
    _put(out, f"decoder.{n}", _linear(state, "gen_logvar"))
    return out


def _srnn(state, dvae):
    r, zd, xd = dvae.rnn.hidden_size, dvae.z_dim, dvae.x_dim
    out = {}
    _stack(out, state, "mlp_x_h", "embed_x")
    out.update(_lstm(state, "rnn_h", "rnn"))
    h, z = _split(r, zd)
    n = _stack(out, state, "mlp_hz_z", "transition.head.net", cols=_reorder([h, z], [1, 0]))  # [h, z] -> [z, h]
    mean, logvar = ("prior_z_mean", "prior_z_logvar") if "prior_z_mean.weight" in state else ("prior_mean",
                                                                                               "prior_logvar")
    _put(out, f"transition.head.net.{n}", _heads(state, mean, logvar))
    inf = ("inf_z_mean", "inf_z_logvar") if "inf_z_mean.weight" in state else ("inf_mean", "inf_logvar")
    if dvae.backward_guide:
        _stack(out, state, "mlp_hx_g", "embed_hx")  # [h_t, x_t] in both
        out.update(_lstm(state, "rnn_g", "backward_rnn"))
        cols = _reorder(_split(r, zd), [1, 0])  # theirs [g_t, z_{t-1}], ours [z_{t-1}, g_t]
    else:
        cols = _reorder(_split(r, xd, zd), [2, 0, 1])  # theirs [h_t, x_t, z_{t-1}], ours [z_{t-1}, h_t, x_t]
    n = _stack(out, state, "mlp_gz_z", "encoder.head.net", cols=cols)
    _put(out, f"encoder.head.net.{n}", _heads(state, *inf))
    n = _stack(out, state, "mlp_hz_x", "decoder", cols=_reorder(_split(r, zd), [1, 0]))  # [h, z] -> [z, h]
    if "gen_x_mean.weight" in state:  # trajectories: (mean, log-variance) -> our (mean, log standard deviation)
        _put(out, f"decoder.{n}", _heads(state, "gen_x_mean", "gen_x_logvar", logvar_factor=0.5))
    else:
        _put(out, f"decoder.{n}", _linear(state, "gen_logvar" if "gen_logvar.weight" in state else "gen_x"))
    return out


def _reorder(blocks: list[list[int]], order: list[int]) -> list[int]:
    return [c for i in order for c in blocks[i]]


MAPPINGS = {"vae": _vae, "dkf": _dkf, "rvae-noncausal": _rvae, "srnn": _srnn}


def _load(dvae, mapped: dict, source: Path):
    """Copy ``mapped`` into ``dvae`` after checking that every tensor is there with the right shape."""
    ours = dvae.state_dict()
    buffers = {"feature_loc", "feature_scale", "motion_scale"}
    missing = [k for k in ours if k not in mapped and k not in buffers]
    if missing:
        raise ReferenceImportError(f"{source}: nothing in the checkpoint for {missing}")
    for key, value in mapped.items():
        if key not in ours:
            raise ReferenceImportError(f"{source}: internal mapping names an unknown tensor {key}")
        if tuple(ours[key].shape) != tuple(value.shape):
            raise ReferenceImportError(f"{source}: tensor {key}: the config gives shape {tuple(ours[key].shape)}, "
                                       f"the checkpoint holds {tuple(value.shape)}")
    dvae.load_state_dict({**ours, **{k: v.to(ours[k].dtype) for k, v in mapped.items()}})
    return dvae


def _check_all_read(source: Path, state: dict, mapped_from: set):
    """Every tensor of the reference state dict must be used: an unused one means the config is wrong."""
    unused = sorted(set(state) - mapped_from)
    if unused:
        raise ReferenceImportError(f"{source}: the config leaves these checkpoint tensors unused: {unused}")


class _Tracking(dict):
    """A state dict that records which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def import_prior(source: str, checkpoint: str | Path, config: str | Path | None = None,
                 out: str | Path | None = None):
    """The reference prior ``checkpoint`` (a state dict published by ``source``: ``dvae-se`` or ``mixdvae``)
    as our DVAE, in eval mode; written as one of our checkpoints to ``out`` when given.

    ``config``: the reference's .ini describing the architecture (default: the one beside the checkpoint).
    Errors (``ReferenceImportError``) name the file and, for a config that does not fit the weights, the tensor
    and both shapes."""
    if source not in SOURCES:
        raise ReferenceImportError(f"--from must be one of {', '.join(SOURCES)}, got {source!r}")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ReferenceImportError(f"{checkpoint}: no such file")
    config = Path(config) if config else find_config(source, checkpoint)
    cfg = configparser.ConfigParser()
    try:
        cfg.read_string(config.read_text())
        cfg["Network"]
    except (configparser.Error, KeyError, UnicodeDecodeError) as err:
        raise ReferenceImportError(f"{config}: not a reference config with a [Network] section ({err})") from None
    try:
        raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ReferenceImportError(f"{checkpoint}: not a readable state dict ({type(err).__name__}: {err})") from None
    raw = raw.get("model_state_dict", raw) if isinstance(raw, dict) else raw
    if not isinstance(raw, dict) or not all(torch.is_tensor(v) for v in raw.values()):
        raise ReferenceImportError(f"{checkpoint}: expected a state dict of tensors")
    try:
        model, kind, options = architecture(source, cfg, raw)
        dvae = build_dvae(model, kind, **options)
        state = _Tracking(raw)
        mapped = MAPPINGS[model](state, dvae)
    except ReferenceImportError as err:
        raise ReferenceImportError(f"{config}: {err}") from None
    except KeyError as err:
        raise ReferenceImportError(f"{checkpoint}: the config {config.name} expects a tensor {err.args[0]} that "
                                   f"the checkpoint does not hold") from None
    _check_all_read(checkpoint, raw, state.read)
    _load(dvae, mapped, checkpoint)
    if out is not None:
        save_imported(dvae, {"model": model, "kind": kind, **options}, out,
                      origin=f"{source}: {checkpoint.name} ({config.name})")
    return dvae.eval().requires_grad_(False)


def save_imported(dvae, config: dict, out: str | Path, origin: str) -> Path:
    """One of our prior checkpoints (the format :func:`~ppl_models.dvae.train.load_prior` reads)."""
    import ppl_models

    out = Path(out)
    state = {"format": FORMAT, "version": ppl_models.__version__, "name": f"dvae-{config['model']}",
             "config": config, "modules": {"dvae": dvae.state_dict()}, "params": {}, "constraints": {},
             "history": {"imported_from": origin}, "epoch": None}
    atomic_torch_save(state, out)
    return out


__all__ = ["import_prior", "ReferenceImportError", "SOURCES", "CheckpointError"]
