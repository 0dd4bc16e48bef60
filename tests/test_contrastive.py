"""Similarities, InfoNCE and the EMA update against hand computations."""

import math

import pytest
import torch
from torch import nn

from cocoa.contrastive import (
    SIMILARITIES,
    ema_update,
    info_nce,
    make_similarity,
    register_similarity,
)

# a hand-made pair: q = N((1, 2), diag(1, 3)), k = N((0, 0), diag(1, 1))
MU_Q, VAR_Q = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 3.0]])
MU_K, VAR_K = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])


def test_registry_lists_required_names():
    for name in ("bhattacharyya", "bilinear", "cosine", "neg-euclidean", "bhattacharyya-full"):
        assert name in SIMILARITIES


def test_bhattacharyya_is_thesis_eq_4_2_on_a_hand_made_pair():
    # Σ = (Σq + Σk)/2 = diag(1, 2); −Δμᵀ Σ⁻¹ Δμ = −(1/1 + 4/2) = −3
    sim = make_similarity("bhattacharyya", 2)
    assert sim(MU_Q, VAR_Q, MU_K, VAR_K).item() == pytest.approx(-3.0)


def test_bhattacharyya_full_is_the_negative_bhattacharyya_distance():
    # D_B = ⅛·3 + ½ ln(det Σ / √(det Σq det Σk)) = 3/8 + ½ ln(2 / √3)
    expected = -(3 / 8 + 0.5 * math.log(2 / math.sqrt(3)))
    sim = make_similarity("bhattacharyya-full", 2)
    assert sim(MU_Q, VAR_Q, MU_K, VAR_K).item() == pytest.approx(expected, rel=1e-6)


def test_neg_euclidean_cosine_dot_bilinear():
    assert make_similarity("neg-euclidean", 2)(
        MU_Q, VAR_Q, MU_K + 1, VAR_K
    ).item() == pytest.approx(-1.0)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    cos = make_similarity("cosine", 2)
    assert cos(a, VAR_K, b, VAR_K).item() == pytest.approx(math.sqrt(0.5) / cos.temperature)
    assert make_similarity("dot", 2)(a * 3, VAR_K, b * 2, VAR_K).item() == pytest.approx(6.0)
    bil = make_similarity("bilinear", 2)
    with torch.no_grad():
        bil.W.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # qᵀWk with q = (1, 2), k = (1, 1): (1, 2)·(3, 7) = 17
    assert bil(MU_Q, VAR_Q, b, VAR_K).item() == pytest.approx(17.0)
    assert sum(p.numel() for p in bil.parameters()) == 4


@pytest.mark.parametrize(
    "name", ["bhattacharyya", "bhattacharyya-full", "bilinear", "cosine", "neg-euclidean", "dot"]
)
def test_logits_matrix_orientation(name):
    torch.manual_seed(0)
    N, L = 5, 3
    mu_q, mu_k = torch.randn(N, L), torch.randn(N, L)
    var_q, var_k = torch.rand(N, L) + 0.1, torch.rand(N, L) + 0.1
    sim = make_similarity(name, L)
    logits = sim(mu_q, var_q, mu_k, var_k)
    assert logits.shape == (N, N)
    for i, j in [(0, 3), (4, 1), (2, 2)]:
        single = sim(mu_q[i : i + 1], var_q[i : i + 1], mu_k[j : j + 1], var_k[j : j + 1])
        assert logits[i, j].item() == pytest.approx(single.item(), rel=1e-5, abs=1e-6)


def test_bhattacharyya_prefers_matching_pairs():
    mu = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    var = torch.ones(3, 2)
    logits = make_similarity("bhattacharyya", 2)(mu, var, mu + 0.1, var)
    assert (logits.argmax(1) == torch.arange(3)).all()


def test_info_nce_by_hand():
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    expected = 0.5 * (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(0.5))
    assert info_nce(logits).item() == pytest.approx(expected)
    # uniform logits: log N
    assert info_nce(torch.zeros(8, 8)).item() == pytest.approx(math.log(8))


def test_ema_update():
    q, k = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        for p in q.parameters():
            p.fill_(1.0)
        for p in k.parameters():
            p.fill_(3.0)
    ema_update(k, q, momentum=0.9)
    for p in k.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.9 * 3.0 + 0.1 * 1.0))
    for p in q.parameters():
        torch.testing.assert_close(p, torch.ones_like(p))


def test_unknown_similarity_names_close_matches():
    with pytest.raises(ValueError, match="bhattacharyya"):
        make_similarity("bhatacharya", 2)


def test_user_registered_similarity():
    @register_similarity("test-neg-l1")
    def _factory(latent_dim):
        class NegL1(nn.Module):
            def forward(self, mu_q, var_q, mu_k, var_k):
                return -(mu_q[:, None] - mu_k[None]).abs().sum(-1)

        return NegL1()

    assert "test-neg-l1" in SIMILARITIES
    out = make_similarity("test-neg-l1", 2)(MU_Q, VAR_Q, MU_K, VAR_K)
    assert out.item() == pytest.approx(-3.0)
