"""PEARL's probabilistic context: Gaussian factors per transition, their product, the KL.

Each context transition c_n is encoded as a Gaussian factor Ψ(z | c_n) = N(μ_n, σ²_n); the task
posterior is their product q(z | c_1:N) ∝ Π_n Ψ(z | c_n) (Rakelly et al., 2019, eq. 4), a
Gaussian with precision Σ_n 1/σ²_n. Both PEARL's posterior and CoCOA's query/key embeddings are
built this way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .nets import mlp
from .np_nets import MIN_VAR


def product_of_gaussians(mu: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of diagonal Gaussian factors along dim −2.

    Args:
        mu, var: ``(..., n_factors, latent)`` factor means and variances.

    Returns:
        ``(mu, var)`` of shape ``(..., latent)``: σ² = 1 / Σ 1/σ²_n, μ = σ² Σ μ_n/σ²_n
        (factor variances clamped at ``MIN_VAR`` as in PEARL's code).
    """
    var = var.clamp(min=MIN_VAR)
    precision = var.reciprocal()
    var_post = precision.sum(dim=-2).reciprocal()
    mu_post = var_post * (mu * precision).sum(dim=-2)
    return mu_post, var_post


def kl_to_standard_normal(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) summed over the last dim: ½ Σ (σ² + μ² − 1 − log σ²)."""
    return 0.5 * (var + mu.square() - 1.0 - var.log()).sum(dim=-1)


class ContextEncoder(nn.Module):
    """MLP from one context transition to a Gaussian factor (μ, σ² = softplus(·))."""

    def __init__(self, context_dim: int, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(context_dim, 2 * latent_dim, hidden)

    def factors(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., n, context_dim)`` → factor means and variances ``(..., n, latent)``."""
        out = self.net(context)
        mu, pre_var = out[..., : self.latent_dim], out[..., self.latent_dim :]
        # softplus on a contiguous copy: on the strided slice it runs ~4x slower on CPU
        return mu, F.softplus(pre_var.contiguous())

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior ``(mu, var)`` of shape ``(..., latent)`` from ``(..., n, context_dim)``."""
        return product_of_gaussians(*self.factors(context))
