"""Product of Gaussians and the KL to N(0, I) against closed forms."""

import math

import pytest
import torch

from cocoa.context import ContextEncoder, kl_to_standard_normal, product_of_gaussians


def test_product_of_two_gaussians_by_hand():
    # N(1, 1) · N(3, 1) ∝ N(2, 1/2); N(0, 4) · N(2, 1) ∝ N(1.6, 0.8) per dimension
    mu = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # (factors=2, latent=2)
    var = torch.tensor([[1.0, 4.0], [1.0, 1.0]])
    mu_p, var_p = product_of_gaussians(mu, var)
    torch.testing.assert_close(var_p, torch.tensor([0.5, 0.8]))
    torch.testing.assert_close(mu_p, torch.tensor([2.0, 1.6]))


def test_product_batched_over_tasks_and_single_factor_is_identity():
    torch.manual_seed(0)
    mu = torch.randn(4, 1, 3)
    var = torch.rand(4, 1, 3) + 0.1
    mu_p, var_p = product_of_gaussians(mu, var)
    assert mu_p.shape == (4, 3)
    torch.testing.assert_close(mu_p, mu[:, 0])
    torch.testing.assert_close(var_p, var[:, 0])


def test_product_of_n_equal_factors_divides_variance():
    mu = torch.full((10, 2), 0.7)
    var = torch.full((10, 2), 2.0)
    mu_p, var_p = product_of_gaussians(mu, var)
    torch.testing.assert_close(var_p, torch.full((2,), 0.2))
    torch.testing.assert_close(mu_p, torch.full((2,), 0.7))


def test_variance_is_clamped():
    mu = torch.zeros(2, 1)
    var = torch.zeros(2, 1)
    _, var_p = product_of_gaussians(mu, var)
    assert torch.isfinite(var_p).all()
    torch.testing.assert_close(var_p, torch.tensor([0.5e-7]))


def test_kl_closed_form():
    assert kl_to_standard_normal(torch.zeros(3), torch.ones(3)).item() == 0.0
    mu, var = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])
    expected = 0.5 * ((0.5 + 1 - 1 - math.log(0.5)) + (2.0 + 4 - 1 - math.log(2.0)))
    assert abs(kl_to_standard_normal(mu, var).item() - expected) < 1e-6


def test_encoder_shapes_and_positive_variance():
    enc = ContextEncoder(context_dim=5, latent_dim=3, hidden=(16, 16))
    ctx = torch.randn(4, 7, 5)  # (task, n, ctx)
    mu_f, var_f = enc.factors(ctx)
    assert mu_f.shape == var_f.shape == (4, 7, 3)
    assert (var_f > 0).all()
    mu, var = enc(ctx)
    assert mu.shape == var.shape == (4, 3)
    torch.testing.assert_close((mu, var), product_of_gaussians(mu_f, var_f))


def _attention_encoder(seed: int = 0) -> ContextEncoder:
    torch.manual_seed(seed)
    enc = ContextEncoder(context_dim=5, latent_dim=3, hidden=(16, 16), attention_layers=2)
    with torch.no_grad():  # move the ±3e-3 head off zero so that factors differ visibly
        enc.head.weight.normal_(0.0, 0.5)
    return enc


def test_attention_encoder_is_a_product_of_factors_and_ignores_order():
    enc = _attention_encoder()
    ctx = torch.randn(4, 7, 5)  # (task, n, ctx)
    mu_f, var_f = enc.factors(ctx)
    assert mu_f.shape == var_f.shape == (4, 7, 3) and (var_f > 0).all()
    torch.testing.assert_close(enc(ctx), product_of_gaussians(mu_f, var_f))
    # no positions: permuting a context's transitions permutes its factors, not its posterior
    perm = torch.randperm(7)
    mu_p, _ = enc.factors(ctx[:, perm])
    torch.testing.assert_close(mu_p, mu_f[:, perm])
    torch.testing.assert_close(enc(ctx[:, perm]), enc(ctx))


def test_attention_factors_depend_on_the_other_transitions_of_their_context_only():
    enc = _attention_encoder()
    ctx = torch.randn(2, 6, 5)
    assert not enc.row_wise
    mu_f, _ = enc.factors(ctx)
    # a change to transition 5 of context 0 moves every factor of context 0, none of context 1
    changed = ctx.clone()
    changed[0, 5] += 1.0
    mu_c, _ = enc.factors(changed)
    assert (mu_c[0, :5] - mu_f[0, :5]).abs().amax(-1).min() > 1e-4
    torch.testing.assert_close(mu_c[1], mu_f[1])
    # leading dims are contexts: (2, 3, n) encodes as 6 independent contexts
    many = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(enc.factors(many)[0][1, 2], enc.factors(many[1, 2])[0])


def test_recurrent_encoder_gives_one_factor_read_in_order():
    """PEARL's recurrent option: one Gaussian per context, from an LSTM over its rows in
    order, so the order matters and each context is read on its own."""
    torch.manual_seed(0)
    enc = ContextEncoder(context_dim=5, latent_dim=3, hidden=(16, 16), recurrent=True)
    with torch.no_grad():  # move the ±3e-3 head off zero so that posteriors differ visibly
        enc.head.weight.normal_(0.0, 0.5)
    assert not enc.row_wise
    ctx = torch.randn(4, 7, 5)  # (task, n, ctx)
    mu_f, var_f = enc.factors(ctx)
    assert mu_f.shape == var_f.shape == (4, 1, 3) and (var_f > 0).all()
    mu, var = enc(ctx)
    torch.testing.assert_close((mu, var), (mu_f[:, 0], var_f[:, 0]))
    # reversing a context's rows changes its posterior; a set encoder's would not move
    assert (enc(ctx.flip(1))[0] - mu).abs().amax() > 1e-3
    # a change to the last row of context 0 moves context 0 only
    changed = ctx.clone()
    changed[0, 6] += 1.0
    mu_c, _ = enc(changed)
    assert (mu_c[0] - mu[0]).abs().amax() > 1e-3
    torch.testing.assert_close(mu_c[1:], mu[1:])
    # leading dims are contexts, and a context's prefix is read as the LSTM read it
    many = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(enc(many)[0][1, 2], enc(many[1, 2])[0])
    with pytest.raises(ValueError, match="recurrent or has attention, not both"):
        ContextEncoder(5, 3, (16, 16), attention_layers=1, recurrent=True)
