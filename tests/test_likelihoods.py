import math

import torch

from ppl_models.dvae.likelihoods import Likelihood, itakura_saito, power_likelihood


def test_power_likelihood_is_the_complex_gaussian_and_minus_is_divergence():
    torch.manual_seed(0)
    v = torch.rand(1000).double() * 3 + 0.01
    X = torch.complex(torch.randn(1000).double(), torch.randn(1000).double()) * torch.sqrt(v / 2)
    power = X.abs() ** 2
    complex_gaussian = -power / v - torch.log(math.pi * v)  # log CN(X; 0, v)
    exponential = power_likelihood(torch.log(v)).log_prob(power)
    # |X|^2 = r^2; the change of variables from (Re X, Im X) to (r^2, phase) has Jacobian 1/2, uniform
    # phase contributes log(1 / 2pi): log p(P) = log CN(X) + log(pi)
    torch.testing.assert_close(exponential, complex_gaussian + math.log(math.pi))
    torch.testing.assert_close(-exponential, itakura_saito(power, v) + torch.log(power) + 1)


def test_itakura_saito_is_scale_invariant_and_zero_at_equality():
    p, v = torch.rand(50) + 0.1, torch.rand(50) + 0.1
    torch.testing.assert_close(itakura_saito(7 * p, 7 * v), itakura_saito(p, v))
    torch.testing.assert_close(itakura_saito(p, p), torch.zeros(50), atol=1e-6, rtol=0)
    assert (itakura_saito(p, v) >= 0).all()


def test_likelihood_shapes_and_means():
    g = Likelihood("gaussian", 4)
    params = torch.randn(2, 5, g.param_dim)
    assert g(params).batch_shape == (2, 5, 4)
    torch.testing.assert_close(g.mean(params), params[..., :4])
    s = Likelihood("power", 513)
    params = torch.randn(2, 5, 513)
    torch.testing.assert_close(s.mean(params), params.exp())
    torch.testing.assert_close(s(params).mean, params.exp())
