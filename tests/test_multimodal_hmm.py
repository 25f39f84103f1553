"""The exact baselines: the multimodal HMM's enumerated likelihood equals a brute-force sum over every joint
state path and the forward algorithm (DiscreteHMM); the multimodal LDS's hand-written Kalman filter equals
Pyro's GaussianHMM; in both, a missing frame contributes nothing and the filtered imputation is a proper
predictive distribution."""

import itertools

import torch

from ppl_models.multimodal.multimodal_hmm import MultimodalHMM, enumerated_log_likelihood
from ppl_models.multimodal.multimodal_lds import MultimodalLDS

WIDTHS = {"a": 2, "b": 1}


def data(batch=3, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(batch, frames, d, generator=g) for m, d in WIDTHS.items()}
    mask = {"a": torch.tensor([[1., 1, 1], [1, 0, 1], [0, 0, 0]]),
            "b": torch.tensor([[1., 0, 1], [1, 1, 1], [1, 1, 0]])}
    return x, mask


def perturbed(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


def brute_force_log_likelihood(hmm: MultimodalHMM, x, mask) -> torch.Tensor:
    """log sum over all (s, c^a, c^b) paths of p(path) p(observed frames | path), (B,): eq. 41 by hand."""
    A_s = hmm.shared_logits.softmax(-1)
    A = {m: hmm.private_logits[m].softmax(-1) for m in hmm.names}
    B, T = mask["a"].shape
    states = list(itertools.product(range(hmm.K_s), *[range(hmm.K_p)] * len(hmm.names)))
    out = torch.zeros(B)
    for b in range(B):
        paths = []
        for path in itertools.product(states, repeat=T):
            lp = torch.tensor(0.0)
            for t, (s, *c) in enumerate(path):
                if t == 0:  # frame 0 follows one transition from uniform states
                    lp = lp + A_s.mean(0)[s].log() + sum(A[m].mean(0)[k].log() for m, k in zip(hmm.names, c))
                else:
                    s0, *c0 = path[t - 1]
                    lp = lp + A_s[s0, s].log() + sum(A[m][k0, k].log() for m, k0, k in zip(hmm.names, c0, c))
                for m, k in zip(hmm.names, c):
                    if mask[m][b, t]:
                        normal = torch.distributions.Normal(hmm.loc[m][s, k], hmm.log_scale[m][s, k].exp())
                        lp = lp + normal.log_prob(x[m][b, t]).sum()
            paths.append(lp)
        out[b] = torch.logsumexp(torch.stack(paths), 0)
    return out


def test_hmm_enumeration_equals_brute_force_and_the_forward_algorithm():
    hmm = perturbed(MultimodalHMM(WIDTHS, shared_states=2, private_states=2))
    x, mask = data()
    truth = brute_force_log_likelihood(hmm, x, mask).detach()
    torch.testing.assert_close(hmm.log_likelihood(x, mask).detach(), truth, rtol=1e-5, atol=1e-5)  # DiscreteHMM
    torch.testing.assert_close(enumerated_log_likelihood(hmm, x, mask).detach(), truth.sum(), rtol=1e-5, atol=1e-5)


def test_hmm_missing_frames_add_nothing_and_filtering_is_normalised():
    hmm = perturbed(MultimodalHMM(WIDTHS, 2, 3), seed=1)
    x, mask = data(batch=3, frames=5)
    mask = {m: torch.ones(3, 5) for m in WIDTHS}
    mask["b"][:] = 0
    with torch.no_grad():
        changed = {"a": x["a"], "b": x["b"] + 100.0}  # values under mask 0 are never read
        torch.testing.assert_close(hmm.log_likelihood(x, mask), hmm.log_likelihood(changed, mask))
        weights = hmm.filter(x, mask).exp()
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
        mean, std = hmm.predictive(x, mask)["b"]
        loc = hmm.loc["b"]
        assert (mean >= loc.min() - 1e-5).all() and (mean <= loc.max() + 1e-5).all()  # a mixture of the means
        assert (std > 0).all()


def test_lds_kalman_filter_equals_gaussian_hmm_with_and_without_gaps():
    lds = perturbed(MultimodalLDS(WIDTHS, z_shared=2, z_private=1), seed=2)
    x, mask = data(batch=3, frames=3)
    full = {m: torch.ones_like(v) for m, v in mask.items()}
    with torch.no_grad():
        for m in (mask, full):
            torch.testing.assert_close(lds.kalman_filter(x, m)[2], lds.log_likelihood(x, m), rtol=1e-4, atol=1e-4)
        # a missing sensor adds nothing: the likelihood of 'a' alone under the model with 'b' hidden equals the
        # same model's marginal of 'a' computed with b's loading removed
        only_a = {"a": full["a"], "b": torch.zeros_like(full["b"])}
        reference = MultimodalLDS({"a": 2}, z_shared=2, z_private=1)
        reference.transition_blocks[0].copy_(lds.transition_blocks[0])
        reference.transition_blocks[1].copy_(lds.transition_blocks[1])
        reference.log_process_scale.copy_(lds.log_process_scale[:3])
        reference.loading["a"].copy_(lds.loading["a"])
        reference.bias["a"].copy_(lds.bias["a"])
        reference.log_noise["a"].copy_(lds.log_noise["a"])
        alone = reference.log_likelihood({"a": x["a"]}, {"a": full["a"]})
        torch.testing.assert_close(lds.log_likelihood(x, only_a), alone, rtol=1e-4, atol=1e-4)
