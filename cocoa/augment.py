"""Augmentations of context transitions (RAD's sense), the second axis of CoCOA's design space.

An augmentation maps context transitions ``(..., n, ctx)`` (rows c = (s, a, r[, s'])) to
``(..., n', ctx)`` with every random draw from the ``torch.Generator`` it is given (the run's
own, so a run is a function of its seed). Built in:

* ``crop``: the temporal crop, CoCOA's pair maker. A crop needs episode boundaries, so the
  buffer draws it (``MultiTaskReplayBuffer.sample_crops``); as a transformation it is the
  identity, and its presence tells the ``trajectory`` objective to pair two independent crops
  of one episode (without it both views share one window).
* ``noise``: Gaussian noise on s and s′, σ = ``noise_scale`` × the buffer's per-dimension std.
* ``reward-noise``: Gaussian noise on r, σ = ``reward_noise_scale`` × the reward's std.
* ``subsample``: keep a random ``subsample_fraction`` of each crop's transitions, in order.

Register a new one with ``@register_augmentation("name")`` on a factory
``(config, layout) -> Augmentation`` (``config``: the learner's config, ``layout``: where s, a,
r and s′ sit in a row). ``AUGMENTATIONS`` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .registry import Registry


@dataclass(frozen=True)
class ContextLayout:
    """Column ranges of a context row (s, a, r[, s'])."""

    obs_dim: int
    act_dim: int
    use_next_obs: bool

    @property
    def observations(self) -> slice:
        return slice(0, self.obs_dim)

    @property
    def actions(self) -> slice:
        return slice(self.obs_dim, self.obs_dim + self.act_dim)

    @property
    def reward(self) -> slice:
        start = self.obs_dim + self.act_dim
        return slice(start, start + 1)

    @property
    def next_observations(self) -> slice | None:
        start = self.obs_dim + self.act_dim + 1
        return slice(start, start + self.obs_dim) if self.use_next_obs else None

    @property
    def width(self) -> int:
        return self.obs_dim + self.act_dim + 1 + (self.obs_dim if self.use_next_obs else 0)


class Augmentation:
    """A transformation of context transitions.

    Attributes:
        temporal_crop: views are independent temporal crops of one episode (``crop``).
        needs_std: ``__call__`` reads the per-dimension std of the buffer's context.
    """

    temporal_crop = False
    needs_std = False

    def __call__(
        self, x: torch.Tensor, gen: torch.Generator, std: torch.Tensor | None
    ) -> torch.Tensor:
        """``x``: ``(..., n, ctx)``; ``std``: ``(ctx,)`` or None. Returns ``(..., n', ctx)``."""
        raise NotImplementedError


AugmentationFactory = Callable[[Any, ContextLayout], Augmentation]
AUGMENTATION_REGISTRY: Registry[AugmentationFactory] = Registry("augmentation")
AUGMENTATIONS: list[str] = AUGMENTATION_REGISTRY.names  # in registration order


def register_augmentation(name: str) -> Callable[[AugmentationFactory], AugmentationFactory]:
    """Decorator registering ``factory(config, layout) -> Augmentation`` under ``name``."""
    return AUGMENTATION_REGISTRY.register(name)


def check_augment(names: Sequence[str]) -> None:
    """``ValueError`` (one line listing the known names) for an unknown or repeated name."""
    for name in names:
        AUGMENTATION_REGISTRY.check(name)
    if len(set(names)) != len(names):
        raise ValueError(f"augmentation named twice in {','.join(names)}")


@register_augmentation("crop")
class Crop(Augmentation):
    """temporal crop: the two views are independent windows of one episode"""

    temporal_crop = True

    def __init__(self, cfg: Any, layout: ContextLayout):
        pass

    def __call__(self, x, gen, std):
        return x  # the buffer drew the window


def _noisy(
    x: torch.Tensor, cols: list[slice], sigma: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """``x`` with N(0, σ²) noise added to the columns ``cols`` (σ: ``(ctx,)``)."""
    out = x.clone()
    for c in cols:
        eps = torch.randn(x[..., c].shape, generator=gen, device=x.device, dtype=x.dtype)
        out[..., c] = x[..., c] + sigma[c] * eps
    return out


@register_augmentation("noise")
class StateNoise(Augmentation):
    """Gaussian noise on s and s', sigma = noise_scale x the buffer's per-dimension std"""

    needs_std = True

    def __init__(self, cfg: Any, layout: ContextLayout):
        self.scale = cfg.noise_scale
        self.cols = [c for c in (layout.observations, layout.next_observations) if c]

    def __call__(self, x, gen, std):
        return _noisy(x, self.cols, self.scale * std, gen)


@register_augmentation("reward-noise")
class RewardNoise(Augmentation):
    """Gaussian noise on r, sigma = reward_noise_scale x the buffer's reward std"""

    needs_std = True

    def __init__(self, cfg: Any, layout: ContextLayout):
        self.scale = cfg.reward_noise_scale
        self.cols = [layout.reward]

    def __call__(self, x, gen, std):
        return _noisy(x, self.cols, self.scale * std, gen)


@register_augmentation("subsample")
class Subsample(Augmentation):
    """keep a random subsample_fraction of each crop's transitions, in temporal order"""

    def __init__(self, cfg: Any, layout: ContextLayout):
        self.fraction = cfg.subsample_fraction

    def kept(self, n: int) -> int:
        """Rows kept of ``n``: ``round(fraction · n)``, at least 1."""
        return max(1, int(round(self.fraction * n)))

    def __call__(self, x, gen, std):
        k = self.kept(x.shape[-2])
        scores = torch.rand(x.shape[:-1], generator=gen, device=x.device)  # (..., n)
        keep = scores.topk(k, dim=-1).indices.sort(dim=-1).values  # (..., k), in order
        return x.gather(-2, keep[..., None].expand(*keep.shape, x.shape[-1]))


class AugmentChain:
    """The augmentations ``names`` applied in order (``crop`` only as the pair-making flag).

    Attributes:
        temporal_crop: ``crop`` is among them.
        needs_std: one of them reads the buffer's per-dimension std.
        transforms: the ones that change transitions (all but ``crop``).
    """

    def __init__(self, names: Sequence[str], cfg: Any, layout: ContextLayout):
        check_augment(names)
        self.names = tuple(names)
        augs = [AUGMENTATION_REGISTRY.get(n)(cfg, layout) for n in self.names]
        self.temporal_crop = any(a.temporal_crop for a in augs)
        self.needs_std = any(a.needs_std for a in augs)
        self.transforms = [a for a in augs if not a.temporal_crop]

    def __bool__(self) -> bool:
        """Whether applying the chain changes anything."""
        return bool(self.transforms)

    def __call__(
        self, x: torch.Tensor, gen: torch.Generator, std: torch.Tensor | None
    ) -> torch.Tensor:
        """``(..., n, ctx)`` → ``(..., n', ctx)``, each transform in turn."""
        for aug in self.transforms:
            x = aug(x, gen, std)
        return x


def context_std(buffer: Any, use_next_obs: bool) -> torch.Tensor:
    """Per-dimension std of the context columns over every row ``buffer`` holds: ``(ctx,)``
    on its device (0 where a column is constant, so it is never noised; 0 when empty).

    ``buffer``: a ``MultiTaskReplayBuffer``; sums run in float64, task by task.
    """
    cols = buffer._context_cols(use_next_obs)
    width = cols.stop - cols.start
    total = torch.zeros(width, dtype=torch.float64, device=buffer.device)
    total_sq = torch.zeros_like(total)
    n = int(np.sum(buffer.filled))
    for task, rows in enumerate(buffer.filled):
        x = buffer.storage[task, : int(rows), cols].double()  # (rows, ctx)
        total += x.sum(0)
        total_sq += x.square().sum(0)
    if n == 0:
        return torch.zeros(width, device=buffer.device)
    mean = total / n
    return (total_sq / n - mean.square()).clamp(min=0.0).sqrt().float()
