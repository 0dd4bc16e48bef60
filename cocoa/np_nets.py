"""Batch-1 inference in numpy for data collection: the policy and context encoder without torch.

A rollout asks the policy for one action per env step. At batch 1, a torch forward pass costs
~0.1 ms of dispatch overhead against ~0.035 ms for the same MLP in numpy, and an env step of
Metaworld costs ~0.4 ms, so collection evaluates copies of the networks in numpy. The modules
here import no torch, which keeps sampler worker processes light; weights arrive as numpy arrays
(``mlp_params`` converts a torch ``nn.Sequential`` state dict).

The arithmetic is that of ``cocoa.nets`` and ``cocoa.context`` in float32, so a numpy policy and
its torch original agree to float rounding (tested); the random draws come from a numpy
``Generator`` instead of a torch one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .types import Transition

# defined here (no torch) and imported by cocoa.nets and cocoa.context, so both paths agree
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # clamp of the policy's log σ
MIN_VAR = 1e-7  # floor of a Gaussian factor's variance (PEARL's code)

#: An MLP's layers as ``(W, b)`` with ``W`` of shape ``(in, out)``: ``x @ W + b``.
MlpParams = list[tuple[np.ndarray, np.ndarray]]


def mlp_params(state_dict: Mapping[str, Any]) -> MlpParams:
    """The linear layers of a ``cocoa.nets.mlp`` state dict, in order, as float32 numpy.

    Keys come in pairs ``"<i>.weight"``, ``"<i>.bias"`` (a prefix such as ``"trunk."`` or
    ``"net."`` is allowed); torch stores weights as ``(out, in)``, so they are transposed.
    """
    weights = [k for k in state_dict if k.endswith(".weight")]
    params = []
    for key in weights:
        w = state_dict[key]
        b = state_dict[key.removesuffix(".weight") + ".bias"]
        params.append((np.ascontiguousarray(float32(w).T), float32(b)))
    return params


def float32(x: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor (possibly on a GPU) or array: a copy, so that
    training the tensor later does not move it."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.float32)


def mlp_forward(params: MlpParams, x: np.ndarray) -> np.ndarray:
    """ReLU MLP: ``(..., in)`` → ``(..., out)`` (``cocoa.nets.mlp``'s default activation)."""
    for w, b in params[:-1]:
        x = np.maximum(x @ w + b, 0.0)
    w, b = params[-1]
    return x @ w + b


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + eˣ), computed stably."""
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class AttentionEncoderParams:
    """A ``cocoa.context.ContextEncoder`` with attention: the embedding MLP, each
    ``TransformerBlock``'s state dict (torch's names and layouts) and the factor head."""

    embed: MlpParams
    blocks: list[dict[str, np.ndarray]]
    head: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RecurrentEncoderParams:
    """A recurrent ``cocoa.context.ContextEncoder``: the embedding MLP, the ``nn.LSTM``'s
    state dict (torch's names and layouts) and the factor head."""

    embed: MlpParams
    lstm: dict[str, np.ndarray]
    head: tuple[np.ndarray, np.ndarray]


#: A context encoder's weights: an MLP applied per transition (PEARL's), with attention, or
#: recurrent.
EncoderParams = MlpParams | AttentionEncoderParams | RecurrentEncoderParams


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5):
    """``torch.nn.LayerNorm`` over the last dim."""
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def transformer_block(p: Mapping[str, np.ndarray], h: np.ndarray) -> np.ndarray:
    """``cocoa.nets.TransformerBlock`` on one set ``(n, dim)``."""
    q, k, v = np.split(h @ p["qkv.weight"].T + p["qkv.bias"], 3, axis=-1)  # (n, dim) each
    logits = q @ k.T / np.sqrt(q.shape[-1])  # (n, n)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    attended = weights / weights.sum(-1, keepdims=True) @ v
    h = layer_norm(
        h + attended @ p["attn_out.weight"].T + p["attn_out.bias"],
        p["norm1.weight"],
        p["norm1.bias"],
    )
    ff = (
        np.maximum(h @ p["ff.0.weight"].T + p["ff.0.bias"], 0.0) @ p["ff.2.weight"].T
        + p["ff.2.bias"]
    )
    return layer_norm(h + ff, p["norm2.weight"], p["norm2.bias"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e⁻ˣ)."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def lstm_last(p: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One-layer ``torch.nn.LSTM`` from zero state over ``(n, in)``: the last output ``(H,)``
    (gates in torch's order i, f, g, o)."""
    H = p["weight_hh_l0"].shape[1]
    pre = x @ p["weight_ih_l0"].T + p["bias_ih_l0"] + p["bias_hh_l0"]  # (n, 4H)
    h = np.zeros(H, dtype=np.float32)
    c = np.zeros(H, dtype=np.float32)
    for t in range(len(x)):
        i, f, g, o = np.split(pre[t] + h @ p["weight_hh_l0"].T, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return h


def encoder_factors(encoder: EncoderParams, context: np.ndarray) -> np.ndarray:
    """The encoder's raw factor outputs (μ, pre-softplus σ²) for one context: ``(n, 2L)``
    (``(1, 2L)`` for a recurrent encoder)."""
    if isinstance(encoder, RecurrentEncoderParams):
        h = np.maximum(mlp_forward(encoder.embed, context), 0.0)  # (n, dim)
        w, b = encoder.head
        return (lstm_last(encoder.lstm, h) @ w + b)[None]
    if not isinstance(encoder, AttentionEncoderParams):
        return mlp_forward(encoder, context)
    h = mlp_forward(encoder.embed, context)  # (n, dim)
    for block in encoder.blocks:
        h = transformer_block(block, h)
    w, b = encoder.head
    return h @ w + b


def posterior(
    encoder: EncoderParams, context: np.ndarray, latent_dim: int
) -> tuple[np.ndarray, ...]:
    """q(z | c) as the product of the encoder's Gaussian factors: ``(n, ctx)`` → μ, σ² ``(L,)``."""
    out = encoder_factors(encoder, context)  # (n, 2L)
    mu, var = out[:, :latent_dim], softplus(out[:, latent_dim:])
    precision = 1.0 / np.maximum(var, MIN_VAR)
    var_post = 1.0 / precision.sum(0)
    return var_post * (mu * precision).sum(0), var_post


class NumpyTanhGaussianPolicy:
    """π(a | s, z) = tanh(N(μ, σ²)) for a fixed z: ``cocoa.nets.TanhGaussianPolicy`` in numpy.

    z's contribution to the first layer is folded into its bias once, so a step costs one
    ``obs @ W`` per layer. A ``Policy`` for ``cocoa.rollout.rollout``.
    """

    def __init__(
        self,
        params: MlpParams,
        z: np.ndarray,
        rng: np.random.Generator,
        deterministic: bool = False,
    ):
        (w0, b0), *rest = params
        obs_dim = w0.shape[0] - len(z)
        z = np.asarray(z, dtype=np.float32)
        # [s, z] @ W0 = s @ W0[:obs] + z @ W0[obs:]
        self._layers = [(w0[:obs_dim], b0 + z @ w0[obs_dim:]), *rest]
        self.act_dim = rest[-1][0].shape[1] // 2 if rest else w0.shape[1] // 2
        self.rng = rng
        self.deterministic = deterministic

    def reset(self) -> None:
        pass

    def act(self, observation: np.ndarray) -> np.ndarray:
        out = mlp_forward(self._layers, np.asarray(observation, dtype=np.float32))
        mean, log_std = out[: self.act_dim], out[self.act_dim :]
        if self.deterministic:
            return np.tanh(mean)
        std = np.exp(np.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))
        noise = self.rng.standard_normal(self.act_dim, dtype=np.float32)
        return np.tanh(mean + std * noise)

    def observe(self, transition: Transition) -> None:
        pass
