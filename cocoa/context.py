"""PEARL's probabilistic context: Gaussian factors per transition, their product, the KL.

Each context transition c_n is encoded as a Gaussian factor Ψ(z | c_n) = N(μ_n, σ²_n); the task
posterior is their product q(z | c_1:N) ∝ Π_n Ψ(z | c_n) (Rakelly et al., 2019, eq. 4), a
Gaussian with precision Σ_n 1/σ²_n. Both PEARL's posterior and CoCOA's query/key embeddings are
built this way.

With ``attention_layers > 0`` the factors are not per-transition: the context transitions first
pass through that many self-attention blocks (no positions, so the posterior still does not
depend on their order), and each factor is read from a transition's mixed feature. On PEARL's
point robot one dense reward places the goal on a circle around s′, and only pairs of
transitions cancel the unknown |g|² (r_i² − r_j² is linear in g); an MLP factor has to learn that
trilateration from single transitions. Fitted to the goal by regression from one episode
that heads at full speed for a random point, as one under a prior z does (256 fresh episodes
per step, ``tests/test_posterior.py``), per-transition factors reach a goal R² of 0.53 after 600
steps and 0.66 after 3,000; with one attention block 0.73 and 0.84; least squares on the same
episodes gets 0.92. The product over factors is kept, so the posterior still narrows as context
grows, and the KL and the similarities see the same Gaussian.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .nets import TransformerBlock, mlp
from .np_nets import MIN_VAR, AttentionEncoderParams, EncoderParams, float32, mlp_params


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
    """Context transitions → Gaussian factors (μ, σ² = softplus(·)) → their product.

    ``attention_layers = 0``: PEARL's encoder, an MLP applied to each transition on its own
    (``net``). Otherwise an MLP embeds each transition (``embed``, width ``hidden[-1]``),
    ``attention_layers`` single-head ``TransformerBlock``s mix the transitions of one context,
    and a linear ``head`` (±3e-3 as PEARL's last layers) reads each transition's factor.
    """

    def __init__(
        self,
        context_dim: int,
        latent_dim: int,
        hidden: Sequence[int],
        attention_layers: int = 0,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.attention_layers = attention_layers
        if attention_layers == 0:
            self.net = mlp(context_dim, 2 * latent_dim, hidden)
        else:
            dim = hidden[-1]
            self.embed = mlp(context_dim, dim, hidden[:-1], out_init_scale=None)
            self.blocks = nn.Sequential(
                *[TransformerBlock(dim, 2 * dim) for _ in range(attention_layers)]
            )
            self.head = nn.Linear(dim, 2 * latent_dim)
            nn.init.uniform_(self.head.weight, -3e-3, 3e-3)
            nn.init.uniform_(self.head.bias, -3e-3, 3e-3)

    @property
    def row_wise(self) -> bool:
        """Whether each transition's factor depends on that transition alone (so rows of
        different contexts may share one forward pass)."""
        return self.attention_layers == 0

    def factors(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., n, context_dim)`` → factor means and variances ``(..., n, latent)``; with
        attention, the n rows of one context attend to each other."""
        if self.row_wise:
            out = self.net(context)
        else:
            lead, (n, ctx) = context.shape[:-2], context.shape[-2:]
            h = self.embed(context.reshape(-1, n, ctx))  # (contexts, n, dim)
            out = self.head(self.blocks(h)).reshape(*lead, n, 2 * self.latent_dim)
        mu, pre_var = out[..., : self.latent_dim], out[..., self.latent_dim :]
        # softplus on a contiguous copy: on the strided slice it runs ~4x slower on CPU
        return mu, F.softplus(pre_var.contiguous())

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior ``(mu, var)`` of shape ``(..., latent)`` from ``(..., n, context_dim)``."""
        return product_of_gaussians(*self.factors(context))

    def numpy_params(self) -> EncoderParams:
        """The weights as ``cocoa.np_nets.posterior`` takes them (float32 numpy)."""
        if self.row_wise:
            return mlp_params(self.net.state_dict())

        blocks = [{k: float32(v) for k, v in b.state_dict().items()} for b in self.blocks]
        (head,) = mlp_params(self.head.state_dict(prefix="head."))
        return AttentionEncoderParams(mlp_params(self.embed.state_dict()), blocks, head)
