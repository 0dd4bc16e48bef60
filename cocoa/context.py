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

With ``recurrent=True`` the encoder is PEARL's recurrent option (its code's
``RecurrentEncoder``, ``recurrent=True`` in its configs): an MLP embeds each transition, an
LSTM reads the context in time order, and its last output is the posterior's one Gaussian
(so the product has a single factor). Its contexts are whole episodes in order
(``MultiTaskReplayBuffer.sample_sequences``), as the code's ``random_sequence`` draws them.
In the same regression fit on the point robot it learns slowly: a goal R² of 0.56 after 600
steps and 0.64 after 1,500 (per-transition factors 0.53 and 0.63, one attention block 0.73
and 0.79), though a GRU fitted for 12,000 steps reaches 0.96. Deviation: the code carries the
LSTM's hidden state from one call to the next (detached) until it resets; here every context
starts from zeros, so a posterior depends on its context alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .nets import TransformerBlock, mlp
from .np_nets import (
    MIN_VAR,
    AttentionEncoderParams,
    EncoderParams,
    RecurrentEncoderParams,
    float32,
    mlp_params,
)


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
    ``recurrent``: the embedding (ReLU on its last layer too, as PEARL's code), an LSTM of
    width ``hidden[-1]`` over the context in order, and ``head`` on its last output: one
    factor per context.
    """

    def __init__(
        self,
        context_dim: int,
        latent_dim: int,
        hidden: Sequence[int],
        attention_layers: int = 0,
        recurrent: bool = False,
    ):
        super().__init__()
        if recurrent and attention_layers:
            raise ValueError("a context encoder is recurrent or has attention, not both")
        self.latent_dim = latent_dim
        self.attention_layers = attention_layers
        self.recurrent = recurrent
        if attention_layers == 0 and not recurrent:
            self.net = mlp(context_dim, 2 * latent_dim, hidden)
        else:
            dim = hidden[-1]
            self.embed = mlp(context_dim, dim, hidden[:-1], out_init_scale=None)
            if recurrent:
                self.lstm = nn.LSTM(dim, dim, batch_first=True)
            else:
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
        return self.attention_layers == 0 and not self.recurrent

    def factors(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., n, context_dim)`` → factor means and variances ``(..., n, latent)``; with
        attention, the n rows of one context attend to each other; recurrent: ``(..., 1,
        latent)``, the LSTM's reading of the n rows in order."""
        if self.row_wise:
            out = self.net(context)
        elif self.recurrent:
            lead, (n, ctx) = context.shape[:-2], context.shape[-2:]
            h = F.relu(self.embed(context.reshape(-1, n, ctx)))  # (contexts, n, dim)
            last = self.lstm(h)[0][:, -1]  # (contexts, dim): the output after the last row
            out = self.head(last).reshape(*lead, 1, 2 * self.latent_dim)
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

        (head,) = mlp_params(self.head.state_dict(prefix="head."))
        if self.recurrent:
            lstm = {k: float32(v) for k, v in self.lstm.state_dict().items()}
            return RecurrentEncoderParams(mlp_params(self.embed.state_dict()), lstm, head)
        blocks = [{k: float32(v) for k, v in b.state_dict().items()} for b in self.blocks]
        return AttentionEncoderParams(mlp_params(self.embed.state_dict()), blocks, head)
