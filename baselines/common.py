"""What the baselines share: advantages, a linear value baseline and Gaussian log-likelihoods.

* ``discount_cumsum`` and ``gae`` along the time axis of ``(..., T)`` arrays.
* ``gaussian_log_prob``: log N(a; μ, diag σ²) of the Gaussian policies (MAML's and RL²'s).
* ``LinearFeatureBaseline``: garage's state-value regression on hand-made features, refitted
  by regularised least squares on each batch (MAML's baseline).

Seeding and collection helpers that every algorithm uses live in ``cocoa.seeding`` and
``cocoa.rollout``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def discount_cumsum(x: np.ndarray, gamma: float) -> np.ndarray:
    """y_t = Σ_{k≥t} γ^{k−t} x_k along the last axis."""
    y = np.zeros_like(x, dtype=np.float64)
    running = np.zeros(x.shape[:-1])
    for t in reversed(range(x.shape[-1])):
        running = x[..., t] + gamma * running
        y[..., t] = running
    return y.astype(np.float32)


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    gamma: float,
    lam: float,
    last_values: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Generalised advantage estimates (Schulman et al., 2016) along the last axis.

    δ_t = r_t + γ (1 − d_t) V_{t+1} − V_t and A_t = δ_t + γ λ (1 − d_t) A_{t+1}, where
    ``dones[..., t] = 1`` cuts the sequence after step t (no bootstrap, no carry) and
    V_T = ``last_values``. Shapes ``(..., T)``.
    """
    rewards, values, dones = (np.asarray(a, dtype=np.float64) for a in (rewards, values, dones))
    advantages = np.zeros_like(rewards)
    next_value = np.broadcast_to(np.asarray(last_values, dtype=np.float64), rewards.shape[:-1])
    next_advantage = np.zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        keep = 1.0 - dones[..., t]
        delta = rewards[..., t] + gamma * keep * next_value - values[..., t]
        next_advantage = delta + gamma * lam * keep * next_advantage
        advantages[..., t] = next_advantage
        next_value = values[..., t]
    return advantages.astype(np.float32)


class LinearFeatureBaseline:
    """V(s_t) ≈ w·[s, s², t, t², t³, 1] (t = step / 100, s clipped to ±10), garage's
    ``LinearFeatureBaseline``: fitted by ridge regression to the discounted returns of a
    batch of episodes; the ridge coefficient grows tenfold while the fit is not finite."""

    def __init__(self, reg_coeff: float = 1e-5):
        self.reg_coeff = reg_coeff
        self.coeffs: np.ndarray | None = None

    @staticmethod
    def features(observations: np.ndarray) -> np.ndarray:
        """``(T, obs_dim)`` observations of one episode → ``(T, 2 obs_dim + 4)`` features."""
        obs = np.clip(observations, -10.0, 10.0)
        t = np.arange(len(obs))[:, None] / 100.0
        return np.concatenate([obs, obs**2, t, t**2, t**3, np.ones_like(t)], axis=1)

    def fit(self, observations: Sequence[np.ndarray], returns: Sequence[np.ndarray]) -> None:
        """Fits the weights to episodes' observations and discounted returns."""
        phi = np.concatenate([self.features(o) for o in observations]).astype(np.float64)
        target = np.concatenate(returns).astype(np.float64)
        reg = self.reg_coeff
        for _ in range(5):
            a = phi.T @ phi + reg * np.eye(phi.shape[1])
            self.coeffs = np.linalg.lstsq(a, phi.T @ target, rcond=None)[0]
            if np.all(np.isfinite(self.coeffs)):
                break
            reg *= 10.0

    def predict(self, observations: np.ndarray) -> np.ndarray:
        """V for the ``(T, obs_dim)`` observations of one episode (zeros before any fit)."""
        if self.coeffs is None:
            return np.zeros(len(observations), dtype=np.float32)
        return (self.features(observations) @ self.coeffs).astype(np.float32)


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """log N(a; μ, diag σ²) summed over the action dimension: ``(...)``."""
    z = (a - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
