"""Networks shared by every algorithm: MLPs, the tanh-Gaussian policy head, their optimiser.

All modules act on the last dimension, so ``(task, batch, feat)`` inputs need no reshaping.
``adam`` builds the Adam optimiser every algorithm uses (one fused kernel per step where torch
has one for the device); ``to_device`` moves small host arrays without a host sync.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .np_nets import LOG_STD_MAX, LOG_STD_MIN


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int],
    activation: type[nn.Module] = nn.ReLU,
    out_init_scale: float | None = 3e-3,
    hidden_init: str = "rlkit",
) -> nn.Sequential:
    """``in_dim → hidden[0] → … → out_dim`` with ``activation`` between layers.

    Initialisation, as PEARL's code (rlkit's ``FlattenMlp``) does it:

    * ``hidden_init="rlkit"``: hidden weights uniform in ±1/√fan, biases 0.1. rlkit's
      ``fanin_init`` reads ``fan`` from ``weight.size(0)``, which for an ``(out, in)`` weight is
      the layer's *output* width; we keep that, so the first layer is initialised as in PEARL
      (for square hidden layers the two readings agree). ``"torch"``: torch's default.
    * ``out_init_scale``: the last layer's weight and bias uniform in ±scale (rlkit's
      ``init_w``: 3e-3 for Q, V and the encoder, 1e-3 for the policy heads), which keeps
      initial Q-values and policy means near zero; ``None`` keeps torch's default.
    """
    if hidden_init not in ("rlkit", "torch"):
        raise ValueError(f"hidden_init must be 'rlkit' or 'torch', got {hidden_init!r}")
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layer = nn.Linear(a, b)
        if hidden_init == "rlkit":
            bound = 1.0 / math.sqrt(layer.weight.size(0))
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.constant_(layer.bias, 0.1)
        layers += [layer, activation()]
    last = nn.Linear(dims[-1], out_dim)
    if out_init_scale is not None:
        nn.init.uniform_(last.weight, -out_init_scale, out_init_scale)
        nn.init.uniform_(last.bias, -out_init_scale, out_init_scale)
    layers.append(last)
    return nn.Sequential(*layers)


class TransformerBlock(nn.Module):
    """One post-norm Transformer encoder block with a single attention head (Vaswani et al.;
    M-CURL's masked objective, and the attention context encoder): h ← LN(h + Attn(h)), then
    h ← LN(h + FF(h)), FF = ReLU MLP. Acts on ``(batch, set, dim)``; no mask, no position."""

    def __init__(self, dim: int, ff_dim: int):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)  # query, key and value projections in one
        self.attn_out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(h).chunk(3, dim=-1)  # (N, T, dim) each
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(qkᵀ/√dim) v, (N, T, dim)
        h = self.norm1(h + self.attn_out(attended))
        return self.norm2(h + self.ff(h))


class PolicySample(NamedTuple):
    """What ``TanhGaussianPolicy`` returns; shapes ``(..., act_dim)`` and ``(..., 1)``."""

    action: torch.Tensor  # tanh(pre_tanh): sampled (or the mean when deterministic)
    mean: torch.Tensor  # mean of the Gaussian before tanh
    log_std: torch.Tensor
    log_pi: torch.Tensor  # log π(action | input), tanh correction included; (..., 1)
    pre_tanh: torch.Tensor


class TanhGaussianPolicy(nn.Module):
    """π(a | x) = tanh(N(μ(x), σ(x)²)), the SAC policy (Haarnoja et al., 2018)."""

    def __init__(self, in_dim: int, act_dim: int, hidden: Sequence[int]):
        super().__init__()
        # mean and log-std heads in one last layer, both ±1e-3 as rlkit's policy heads
        self.trunk = mlp(in_dim, 2 * act_dim, hidden, out_init_scale=1e-3)
        self.act_dim = act_dim

    def forward(
        self,
        x: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> PolicySample:
        mean, log_std = self.trunk(x).chunk(2, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        std = log_std.exp()
        if deterministic:
            pre_tanh = mean
        else:
            noise = torch.randn(
                mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
            )
            pre_tanh = mean + std * noise  # reparameterised sample
        action = torch.tanh(pre_tanh)
        # log N(pre_tanh; mean, std) − Σ log(1 − tanh²), the latter in its stable softplus form
        normal_log_prob = (
            -0.5 * ((pre_tanh - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        )
        log_det = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
        log_pi = (normal_log_prob - log_det).sum(-1, keepdim=True)
        return PolicySample(action, mean, log_std, log_pi, pre_tanh)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """θ_target ← (1 − τ) θ_target + τ θ_source, in place and without gradient.

    Computed as one ``lerp`` per parameter list, θ_target + τ (θ_source − θ_target).
    """
    with torch.no_grad():  # a parameter copy, not part of any loss
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


# devices with a fused Adam kernel (torch >= 2.4 has CPU and CUDA ones)
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(
    params: Iterable[torch.Tensor] | Iterable[dict], lr: float, device: torch.device
) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr)`` with its fastest implementation on ``device``.

    The fused kernel updates every parameter of the optimiser in one call (on CPU it is 3-6x
    faster than ``foreach`` for the suite's networks); elsewhere ``foreach`` batches the
    per-parameter ops. Both compute Adam's update: only the floating-point rounding differs.
    """
    if torch.device(device).type in _FUSED_ADAM_DEVICES:
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def to_device(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host array (or tensor) as a tensor on ``device``, the same dtype.

    On CPU this is a zero-copy view; on an accelerator the copy goes through pinned memory
    asynchronously, so moving a step's small index arrays never waits for the device.
    """
    t = torch.as_tensor(x)
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Inside the block the modules' parameters take no gradient (inputs still do).

    For a loss that differentiates *through* a network it does not train (SAC's policy loss
    through Q), so backward skips those parameters' weight gradients.
    """
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a ``ValueError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)
