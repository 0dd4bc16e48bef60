"""CoCOA's contrastive machinery: similarities between Gaussian embeddings, InfoNCE, EMA.

A similarity is an ``nn.Module`` whose ``forward(mu_q, var_q, mu_k, var_k)`` takes ``(N, latent)``
query and key embeddings and returns the ``(N, N)`` logits ``logits[i, j] = sim(q_i, k_j)``.
Register a new one with ``@register_similarity("name")`` on a factory ``latent_dim -> Module``;
``SIMILARITIES`` lists the names; ``make_similarity(name, latent_dim)`` builds one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .nets import soft_update
from .registry import Registry

SimilarityFactory = Callable[[int], nn.Module]
SIMILARITY_REGISTRY: Registry[SimilarityFactory] = Registry("similarity")
_REGISTRY = SIMILARITY_REGISTRY.entries  # name → factory
SIMILARITIES: list[str] = SIMILARITY_REGISTRY.names  # registered names, in registration order


def register_similarity(name: str) -> Callable[[SimilarityFactory], SimilarityFactory]:
    """Decorator registering ``factory(latent_dim) -> nn.Module`` under ``name``."""
    return SIMILARITY_REGISTRY.register(name)


def check_similarity(name: str) -> None:
    """``ValueError`` naming the closest registered names unless ``name`` is registered."""
    SIMILARITY_REGISTRY.check(name)


def make_similarity(name: str, latent_dim: int) -> nn.Module:
    """The similarity module registered as ``name`` for ``latent_dim``-dimensional embeddings."""
    check_similarity(name)
    return _REGISTRY[name](latent_dim)


class _Pairwise(nn.Module):
    """A similarity given by a function of (μ_q, σ²_q, μ_k, σ²_k) broadcast over all pairs."""

    def __init__(self, fn: Callable[..., torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, mu_q, var_q, mu_k, var_k) -> torch.Tensor:
        # (N, 1, latent) against (1, N, latent) → (N, N)
        return self.fn(mu_q[:, None], var_q[:, None], mu_k[None], var_k[None])


def _bhattacharyya(mu_q, var_q, mu_k, var_k):
    # thesis eq. 4.2: −(μ_q − μ_k)ᵀ Σ⁻¹ (μ_q − μ_k) with Σ = (Σ_q + Σ_k) / 2, diagonal
    var = 0.5 * (var_q + var_k)
    return -((mu_q - mu_k).square() / var).sum(-1)


def _bhattacharyya_full(mu_q, var_q, mu_k, var_k):
    # −D_B = −[⅛ Δμᵀ Σ⁻¹ Δμ + ½ ln(det Σ / √(det Σ_q det Σ_k))], Σ = (Σ_q + Σ_k) / 2
    var = 0.5 * (var_q + var_k)
    mahalanobis = ((mu_q - mu_k).square() / var).sum(-1)
    log_det = var.log().sum(-1) - 0.5 * (var_q.log().sum(-1) + var_k.log().sum(-1))
    return -(mahalanobis / 8.0 + 0.5 * log_det)


def _neg_euclidean(mu_q, var_q, mu_k, var_k):
    return -(mu_q - mu_k).square().sum(-1)


def _dot(mu_q, var_q, mu_k, var_k):
    return (mu_q * mu_k).sum(-1)


register_similarity("bhattacharyya")(lambda latent_dim: _Pairwise(_bhattacharyya))
register_similarity("bhattacharyya-full")(lambda latent_dim: _Pairwise(_bhattacharyya_full))
register_similarity("neg-euclidean")(lambda latent_dim: _Pairwise(_neg_euclidean))
register_similarity("dot")(lambda latent_dim: _Pairwise(_dot))


class Bilinear(nn.Module):
    """sim(q, k) = μ_qᵀ W μ_k with W learned (CURL's similarity, the thesis's ablation).

    W starts at the identity, i.e. at the dot product.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.W = nn.Parameter(torch.eye(latent_dim))

    def forward(self, mu_q, var_q, mu_k, var_k) -> torch.Tensor:
        return mu_q @ self.W @ mu_k.T  # (N, N)


class Cosine(nn.Module):
    """sim(q, k) = cos(μ_q, μ_k) / τ with temperature τ = 0.1 (MoCo/SimCLR style)."""

    def __init__(self, latent_dim: int, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, mu_q, var_q, mu_k, var_k) -> torch.Tensor:
        return F.normalize(mu_q, dim=-1) @ F.normalize(mu_k, dim=-1).T / self.temperature


register_similarity("bilinear")(Bilinear)
register_similarity("cosine")(Cosine)


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """InfoNCE (thesis eq. 4.3): mean N-way cross-entropy of ``(N, N)`` logits with label i
    for row i (the positive key of query i is key i)."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels)


def ema_update(key_encoder: nn.Module, query_encoder: nn.Module, momentum: float) -> None:
    """θ_k ← m θ_k + (1 − m) θ_q (thesis eq. 4.4), in place and without gradient."""
    soft_update(key_encoder, query_encoder, tau=1.0 - momentum)
