import torch
from torch import nn

from ppl_models.dvae.sequence import GaussianCell, LatentSequence


def sequential_log_prob(cell, z, rnn_ctx, head_ctx):
    """log q(z) accumulated frame by frame with cell.step — the definition the fast path must match."""
    B, T, D = z.shape
    total, state, z_prev = torch.zeros(B), None, torch.zeros(B, D)
    for t in range(T):
        loc, scale, state = cell.step(z_prev, None if rnn_ctx is None else rnn_ctx[:, t],
                                      None if head_ctx is None else head_ctx[:, t], state)
        total = total + torch.distributions.Normal(loc, scale).log_prob(z[:, t]).sum(-1)
        z_prev = z[:, t]
    return total


def test_teacher_forced_log_prob_equals_the_frame_by_frame_density():
    torch.manual_seed(0)
    for kwargs in (dict(rnn_dim=8, rnn_ctx_dim=3, head_ctx_dim=5), dict(head_ctx_dim=5), dict(rnn_dim=6)):
        cell = GaussianCell(4, hidden=16, **kwargs)
        rnn_ctx = torch.randn(2, 7, 3) if kwargs.get("rnn_ctx_dim") else None
        head_ctx = torch.randn(2, 7, 5) if kwargs.get("head_ctx_dim") else None
        d = LatentSequence(cell, 2, 7, rnn_ctx, head_ctx)
        z = d.rsample()
        assert z.shape == (2, 7, 4) and z.requires_grad
        torch.testing.assert_close(d.log_prob(z), sequential_log_prob(cell, z, rnn_ctx, head_ctx))


def test_shared_rnn_and_mean_path():
    rnn = nn.LSTM(4 + 2, 8, batch_first=True)
    a, b = GaussianCell(4, rnn_ctx_dim=2, rnn=rnn), GaussianCell(4, rnn_ctx_dim=2, head_ctx_dim=3, rnn=rnn)
    assert a.rnn is b.rnn
    d = LatentSequence(b, 3, 5, torch.randn(3, 5, 2), torch.randn(3, 5, 3))
    torch.testing.assert_close(d.mean_path(), d.params(d.mean_path())[0])  # z_t = loc_t along its own path
