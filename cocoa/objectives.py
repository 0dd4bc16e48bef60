"""Context objectives: what the encoder learns besides the critic loss (thesis §4's first axis).

One contract for all of them. An ``Objective`` is an ``nn.Module`` built from the learner's
parts (``ObjectiveParts``) that

1. ``draw(buffer, tasks, gen, std) -> Views``: samples its data from the encoder buffers of the
   meta-batch's tasks with the run's generator and applies the augmentations. ``Views.query``
   holds the ``(N, n, ctx)`` context rows the query encoder must encode; the learner encodes
   them in the same pass as PEARL's context (the encoder acts row by row);
2. ``forward(views, mu_n, var_n) -> (loss, metrics)``: given the query rows' Gaussian factors
   ``(N, n, latent)``, returns the loss (weighted by ``contrastive_weight`` in the encoder
   loss) and device-scalar metrics (``accuracy``: how often the positive is ranked first);
3. ``after_step()``: moves its momentum (EMA) networks after the optimiser step.

Built in (``OBJECTIVES``):

* ``trajectory``: CoCOA (thesis §4). Two temporal crops of one episode are a positive pair; the
  other episodes' keys are negatives. Query: product of the query encoder's factors over the
  crop; key: the same through the EMA key encoder. InfoNCE over the similarity registry's
  logits, plus ``query_kl_weight`` · KL(q ‖ N(0, I)) on the queries (thesis §4.5).
* ``transition``: CURL's instance discrimination on single context transitions. Two
  augmentations of one transition are a positive pair; the other transitions of the batch (one
  per episode) are the negatives; keys from the EMA encoder; similarity from the registry
  (CURL's is ``bilinear``); the same query KL. It needs an augmentation that changes
  transitions (``crop`` has no effect on one transition), ``noise`` by default.
* ``masked``: M-CURL (Zhu et al., 2020) over T = ``crop_window`` consecutive transitions of one
  episode. Each position is masked with probability ``mask_prob`` (ρ = 0.5); a masked row is
  zeroed 80% of the time, replaced by a random other row of the batch 10% and kept 10%. The
  query encoder's factors of the masked sequence pass through a Transformer (2 layers, one
  head, learned positional embedding, layer norm and residuals); at every masked position its
  output is contrasted with the EMA key encoder's factors of the unmasked sequence at all T
  positions (InfoNCE over positions, the paper's eq. 4: summed over masked positions, averaged
  over sequences). Its weight is 1, as in the paper (``contrastive_weight``).
  With an attention context encoder (``encoder_attention_layers > 0``) the encoder encodes
  each query and key row set as one context, so its factors already mix positions: the key
  encoder sees the unmasked sequence, and the objective's Transformer starts from that.
* ``predictive-cpc`` and ``predictive-spr``: predict the future from the past (CPC; PSRL's
  action-aware transform; SPR). From the posterior of a crop's first ``w − 1`` transitions and
  the last transition's action, a head predicts the EMA key encoder's factor of that last
  transition. ``cpc`` scores the prediction by InfoNCE against the other crops' last
  transitions; ``spr`` by the negative cosine between a projection + predictor of the
  prediction and an EMA projection of the target (no negatives). Both keep the query KL on
  the past posterior.
* ``reward``: a reward decoder, as VariBAD trains its encoder. From the posterior mean of one
  temporal crop of an episode, and each transition's s, a (and s'), a head predicts the
  rewards of another crop of the same episode. The loss is the squared error over the
  batch's reward variance (1 − R², so reward scales do not matter) plus the query KL; its
  ``accuracy`` metric is that R². It needs no key encoder.
* ``none``: PEARL (no term; the learner never calls it).

A user adds one with ``@register_objective("name")`` on a factory ``ObjectiveParts ->
Objective`` (a subclass is its own factory); its docstring's first line is its summary in
``cocoa objectives``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .augment import AUGMENTATIONS, AugmentChain, ContextLayout, check_augment
from .context import ContextEncoder, kl_to_standard_normal, product_of_gaussians
from .contrastive import ema_update, info_nce
from .nets import TransformerBlock, mlp
from .np_nets import MIN_VAR
from .registry import Registry


@dataclass(frozen=True, eq=False)
class ObjectiveParts:
    """What an objective is built from: the learner's config (``PearlConfig``), the context
    layout, the query encoder, its EMA key encoder, the similarity and the augmentations.

    The modules are the learner's own (trained and checkpointed by it); an objective keeps
    them here, outside its own parameters, and registers only what it adds.
    """

    cfg: Any
    layout: ContextLayout
    encoder: ContextEncoder
    key_encoder: ContextEncoder
    similarity: nn.Module
    augment: AugmentChain


class Views(NamedTuple):
    """One draw of an objective's data.

    Attributes:
        query: ``(N, n, ctx)`` rows the query encoder encodes (with gradient).
        key: ``(N, m, ctx)`` rows the EMA key encoder encodes.
        mask: ``(N, n)`` masked positions (``masked`` only), else None.
    """

    query: torch.Tensor
    key: torch.Tensor
    mask: torch.Tensor | None = None


class Objective(nn.Module):
    """Base of the context objectives (see the module docstring for the contract)."""

    # what --augment means for it when not given: the pair maker it was designed with
    default_augment: tuple[str, ...] = ("crop",)

    def __init__(self, parts: ObjectiveParts):
        super().__init__()
        self.parts = parts  # a dataclass, so nn.Module does not register the shared modules

    def draw(
        self,
        buffer: Any,
        tasks: np.ndarray,
        gen: torch.Generator,
        std: torch.Tensor | None,
    ) -> Views:
        """Samples (and augments) this objective's data from ``buffer`` (a
        ``MultiTaskReplayBuffer``) for the host task indices ``tasks``; ``std`` is the
        buffer's per-dimension context std (None unless an augmentation needs it)."""
        raise NotImplementedError

    def forward(
        self, views: Views, mu_n: torch.Tensor, var_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, metrics)`` from the query rows' factors ``(N, n, latent)`` each."""
        raise NotImplementedError

    def after_step(self) -> None:
        """θ_k ← m θ_k + (1 − m) θ_q after the encoder's optimiser step."""
        p = self.parts
        ema_update(p.key_encoder, p.encoder, p.cfg.key_momentum)

    # helpers shared by the objectives

    def _crops(
        self, buffer: Any, tasks: np.ndarray, window: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two random crops of ``window`` steps of each of up to ``contrastive_batch``
        episodes: ``(N, window, ctx)`` each."""
        cfg = self.parts.cfg
        q, k, _ = buffer.sample_crops(
            tasks, cfg.contrastive_batch, window, gen, cfg.use_next_obs_in_context
        )
        return q, k

    def _keys(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The key encoder's factors of ``rows`` ``(N, m, ctx)``: ``(N, m, latent)`` each."""
        with torch.no_grad():  # the key encoder is an EMA of the query encoder: no gradient
            return self.parts.key_encoder.factors(rows)


def _accuracy(logits: torch.Tensor) -> torch.Tensor:
    """Fraction of rows of ``(N, N)`` logits whose largest entry is on the diagonal."""
    labels = torch.arange(logits.shape[-1], device=logits.device)
    return (logits.argmax(-1) == labels).float().mean()


def _features(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """A Gaussian factor as one vector (μ, log σ²): ``(..., 2·latent)``."""
    return torch.cat([mu, var.clamp(min=MIN_VAR).log()], -1)


ObjectiveFactory = Callable[[ObjectiveParts], Objective]
OBJECTIVE_REGISTRY: Registry[ObjectiveFactory] = Registry("objective")
OBJECTIVES: list[str] = OBJECTIVE_REGISTRY.names  # in registration order


def register_objective(name: str) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Decorator registering ``factory(parts) -> Objective`` under ``name``."""
    return OBJECTIVE_REGISTRY.register(name)


def check_objective(name: str) -> None:
    """``ValueError`` (one line listing the known names) unless ``name`` is registered."""
    OBJECTIVE_REGISTRY.check(name)


def make_objective(name: str, parts: ObjectiveParts) -> Objective:
    """The objective registered as ``name``, built from ``parts``."""
    return OBJECTIVE_REGISTRY.get(name)(parts)


# ------------------------------------------------------------------ instance discrimination


@register_objective("trajectory")
class Trajectory(Objective):
    """CoCOA: InfoNCE between two temporal crops of one episode, EMA keys"""

    def draw(self, buffer, tasks, gen, std):
        p = self.parts
        q, k = self._crops(buffer, tasks, p.cfg.crop_window, gen)
        if not p.augment.temporal_crop:  # without `crop` both views share the query's window
            k = q
        if p.augment:  # independent draws for the two views
            q, k = p.augment(q, gen, std), p.augment(k, gen, std)
        return Views(q, k)  # (N, n, ctx), (N, m, ctx)

    def forward(self, views, mu_n, var_n):
        p = self.parts
        mu_q, var_q = product_of_gaussians(mu_n, var_n)  # (N, L)
        with torch.no_grad():  # keys come from the EMA encoder, which takes no gradient
            mu_k, var_k = p.key_encoder(views.key)  # (N, L)
        logits = p.similarity(mu_q, var_q, mu_k, var_k)  # (N, N)
        query_kl = kl_to_standard_normal(mu_q, var_q).mean()
        loss = info_nce(logits) + p.cfg.query_kl_weight * query_kl
        return loss, {"accuracy": _accuracy(logits)}


@register_objective("transition")
class Transition(Trajectory):
    """CURL: InfoNCE between two augmentations of one transition, EMA keys"""

    default_augment = ("noise",)

    def draw(self, buffer, tasks, gen, std):
        p = self.parts
        x, _ = self._crops(buffer, tasks, 1, gen)  # (N, 1, ctx): one transition per episode
        q, k = (p.augment(x, gen, std), p.augment(x, gen, std)) if p.augment else (x, x)
        return Views(q, k)


# ----------------------------------------------------------------------------- M-CURL


def mask_positions(
    shape: tuple[int, int], prob: float, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """M-CURL's (BERT's) masking of ``shape = (N, T)`` positions.

    Returns boolean ``(N, T)`` tensors ``(masked, zeroed, replaced)``: a position is masked
    with probability ``prob``; a masked one is zeroed w.p. 0.8, replaced by another row w.p.
    0.1, kept w.p. 0.1 (``zeroed`` and ``replaced`` are subsets of ``masked``).
    """
    masked = torch.rand(shape, generator=gen, device=device) < prob
    u = torch.rand(shape, generator=gen, device=device)
    zeroed = masked & (u < 0.8)
    replaced = masked & (u >= 0.8) & (u < 0.9)
    return masked, zeroed, replaced


class SequenceTransformer(nn.Module):
    """Factors ``(N, T, latent)`` → reconstructed factors, through a small Transformer
    encoder: input projection of (μ, log σ²), learned positional embedding, ``layers``
    single-head blocks (self-attention and feed-forward, each with a residual and layer
    norm), output head to (μ, softplus σ²)."""

    def __init__(self, latent_dim: int, dim: int, max_len: int, layers: int = 2):
        super().__init__()
        self.latent_dim = latent_dim
        self.inp = nn.Linear(2 * latent_dim, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(max_len, dim))
        self.blocks = nn.Sequential(*[TransformerBlock(dim, 2 * dim) for _ in range(layers)])
        self.out = nn.Linear(dim, 2 * latent_dim)

    def forward(self, mu: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = mu.shape[1]
        h = self.inp(_features(mu, var)) + self.pos[:T]  # (N, T, dim)
        out = self.out(self.blocks(h))  # (N, T, 2L)
        mu_hat, pre_var = out.split(self.latent_dim, -1)
        return mu_hat, F.softplus(pre_var)


@register_objective("masked")
class Masked(Objective):
    """M-CURL: a Transformer restores masked transitions, InfoNCE over a sequence's positions"""

    def __init__(self, parts: ObjectiveParts):
        super().__init__(parts)
        cfg = parts.cfg
        self.transformer = SequenceTransformer(
            cfg.latent_dim, cfg.transformer_dim, max_len=cfg.crop_window
        )

    def draw(self, buffer, tasks, gen, std):
        p = self.parts
        x, _ = self._crops(buffer, tasks, p.cfg.crop_window, gen)  # (N, T, ctx)
        if p.augment:
            x = p.augment(x, gen, std)
        N, T = x.shape[:2]
        masked, zeroed, replaced = mask_positions((N, T), p.cfg.mask_prob, gen, x.device)
        # a replaced row takes a uniformly random *other* row of the batch
        own = torch.arange(N * T, device=x.device)
        other = torch.randint(N * T - 1, (N * T,), generator=gen, device=x.device)
        other = other + (other >= own).long()  # skip the row itself
        swapped = x.flatten(0, 1)[other].view_as(x)
        query = torch.where(replaced[..., None], swapped, x)
        query = torch.where(zeroed[..., None], torch.zeros_like(x), query)
        return Views(query, x, masked)  # masked query, unmasked key: (N, T, ctx) each

    def forward(self, views, mu_n, var_n):
        p = self.parts
        mu_q, var_q = self.transformer(mu_n, var_n)  # (N, T, L)
        mu_k, var_k = self._keys(views.key)  # (N, T, L), unmasked sequence
        logits = torch.func.vmap(p.similarity)(mu_q, var_q, mu_k, var_k)  # (N, T, T)
        N, T = logits.shape[:2]
        labels = torch.arange(T, device=logits.device).expand(N, T)
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        mask = views.mask.flatten().float()  # (N·T,) only masked positions count
        loss = (ce * mask).sum() / N  # eq. 4 per sequence, averaged over sequences
        hits = (logits.argmax(-1) == labels).flatten().float()
        accuracy = (hits * mask).sum() / mask.sum().clamp(min=1.0)
        return loss, {"accuracy": accuracy}


# ------------------------------------------------------------------------- predictive


class _Predictive(Objective):
    """Shared part of the predictive objectives: from the posterior of a crop's first
    ``w − 1`` transitions and the last transition's action, predict the key encoder's factor
    of the last transition."""

    def __init__(self, parts: ObjectiveParts):
        super().__init__(parts)
        cfg, layout = parts.cfg, parts.layout
        L = cfg.latent_dim
        self.head = mlp(2 * L + layout.act_dim, 2 * L, [cfg.predictor_hidden], out_init_scale=None)

    def draw(self, buffer, tasks, gen, std):
        p = self.parts
        x, _ = self._crops(buffer, tasks, max(p.cfg.crop_window, 2), gen)  # (N, w, ctx)
        past, nxt = x[:, :-1], x[:, -1:]  # (N, w − 1, ctx), (N, 1, ctx)
        if p.augment:  # the past is the context; the transition to predict stays as it is
            past = p.augment(past, gen, std)
        return Views(past, nxt)

    def predict(
        self, views: Views, mu_n: torch.Tensor, var_n: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu_hat, var_hat, mu_k, var_k, query_kl)``: the prediction and its target
        ``(N, L)`` each, and KL(q(z | past) ‖ N(0, I)) averaged over crops."""
        mu_p, var_p = product_of_gaussians(mu_n, var_n)  # (N, L) posterior of the past
        action = views.key[:, 0, self.parts.layout.actions]  # (N, act) the next action
        out = self.head(torch.cat([_features(mu_p, var_p), action], -1))  # (N, 2L)
        mu_hat, pre_var = out.split(mu_p.shape[-1], -1)
        mu_k, var_k = self._keys(views.key)  # (N, 1, L)
        query_kl = kl_to_standard_normal(mu_p, var_p).mean()
        return mu_hat, F.softplus(pre_var), mu_k[:, 0], var_k[:, 0], query_kl


@register_objective("predictive-cpc")
class PredictiveCPC(_Predictive):
    """CPC: predict the next transition's key factor from the past and the action, InfoNCE"""

    def forward(self, views, mu_n, var_n):
        p = self.parts
        mu_hat, var_hat, mu_k, var_k, query_kl = self.predict(views, mu_n, var_n)
        logits = p.similarity(mu_hat, var_hat, mu_k, var_k)  # (N, N): other crops negative
        loss = info_nce(logits) + p.cfg.query_kl_weight * query_kl
        return loss, {"accuracy": _accuracy(logits)}


@register_objective("predictive-spr")
class PredictiveSPR(_Predictive):
    """SPR/PSRL: predict the next transition's key factor, negative cosine of projections"""

    def __init__(self, parts: ObjectiveParts):
        super().__init__(parts)
        cfg = parts.cfg
        L, d = cfg.latent_dim, cfg.predictor_hidden
        self.projection = mlp(2 * L, d, [d], out_init_scale=None)
        self.predictor = nn.Linear(d, d)
        # the target branch's projection: an EMA of the online one, no gradient
        self.target_projection = mlp(2 * L, d, [d], out_init_scale=None).requires_grad_(False)
        self.target_projection.load_state_dict(self.projection.state_dict())

    def forward(self, views, mu_n, var_n):
        p = self.parts
        mu_hat, var_hat, mu_k, var_k, query_kl = self.predict(views, mu_n, var_n)
        online = self.predictor(self.projection(_features(mu_hat, var_hat)))  # (N, d)
        with torch.no_grad():  # the target branch is a momentum copy: no gradient
            target = self.target_projection(_features(mu_k, var_k))  # (N, d)
        online, target = F.normalize(online, dim=-1), F.normalize(target, dim=-1)
        loss = -(online * target).sum(-1).mean() + p.cfg.query_kl_weight * query_kl
        return loss, {"accuracy": _accuracy(online @ target.T)}

    def after_step(self) -> None:
        super().after_step()
        ema_update(self.target_projection, self.projection, self.parts.cfg.key_momentum)


@register_objective("none")
class NoObjective(Objective):
    """PEARL: no context objective beyond the critic loss and the KL"""

    def draw(self, buffer, tasks, gen, std):
        raise RuntimeError("the 'none' objective draws nothing (the learner does not call it)")

    def forward(self, views, mu_n, var_n):
        raise RuntimeError("the 'none' objective has no loss (the learner does not call it)")


# ---------------------------------------------------------------------------- decoder


@register_objective("reward")
class RewardDecoder(Objective):
    """Decoder: predict the rewards of another crop of the episode from the posterior mean"""

    def __init__(self, parts: ObjectiveParts):
        super().__init__(parts)
        cfg, layout = parts.cfg, parts.layout
        inputs = layout.obs_dim + layout.act_dim + (layout.obs_dim if layout.use_next_obs else 0)
        h = cfg.predictor_hidden
        self.decoder = mlp(cfg.latent_dim + inputs, 1, [h, h], out_init_scale=None)

    def draw(self, buffer, tasks, gen, std):
        p = self.parts
        q, k = self._crops(buffer, tasks, p.cfg.crop_window, gen)  # (N, w, ctx) each
        if not p.augment.temporal_crop:  # without `crop`: the query's own rewards
            k = q
        if p.augment:  # the context is augmented; the rewards to predict stay as they are
            q = p.augment(q, gen, std)
        return Views(q, k)

    def forward(self, views, mu_n, var_n):
        p, layout = self.parts, self.parts.layout
        mu_q, var_q = product_of_gaussians(mu_n, var_n)  # (N, L)
        target = views.key  # (N, m, ctx)
        columns = [target[..., layout.observations], target[..., layout.actions]]
        if layout.use_next_obs:
            columns.append(target[..., layout.next_observations])
        z = mu_q[:, None].expand(-1, target.shape[1], -1)  # (N, m, L)
        r_hat = self.decoder(torch.cat([z, *columns], -1))  # (N, m, 1)
        r = target[..., layout.reward]  # (N, m, 1)
        # scale-free: the squared error over the rewards' variance in the batch (1 − R²)
        unexplained = (r_hat - r).square().mean() / r.var().clamp(min=1e-8)
        loss = unexplained + p.cfg.query_kl_weight * kl_to_standard_normal(mu_q, var_q).mean()
        return loss, {"accuracy": 1.0 - unexplained.detach()}

    def after_step(self) -> None:
        pass  # no key encoder: the targets are rewards, not features


# --------------------------------------------------------------------- the command line


def parse_augment(text: str) -> tuple[str, ...]:
    """``"crop,noise"`` → ``("crop", "noise")``; ``ValueError`` (one line listing the known
    names) for an unknown or repeated name or an empty list."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError(f"--augment needs at least one name; known: {', '.join(AUGMENTATIONS)}")
    check_augment(names)
    return names


def contrastive_choices(
    algo_config: Any,
    *,
    objective: str | None = None,
    augment: str | None = None,
    augment_context: bool = False,
    strict: bool = True,
) -> Any:
    """``algo_config`` with ``--objective``, ``--augment`` and ``--augment-context`` applied.

    ``objective`` without ``augment`` takes the objective's default augmentations (``crop``;
    ``noise`` for ``transition``). A choice that does not apply to the algorithm (an objective
    for PEARL, whose contrastive weight is 0; augmentations with neither an objective nor
    ``augment_context``; any of them for an algorithm without a context encoder) is a
    ``ValueError`` when ``strict``, and left out otherwise (a sweep over several algorithms
    applies each choice where it applies).
    """
    given = objective is not None or augment is not None or augment_context
    if not given:
        return algo_config
    if objective is not None:
        check_objective(objective)
    augment_names = parse_augment(augment) if augment is not None else None
    if not hasattr(algo_config, "objective"):
        if strict:
            raise ValueError(
                "--objective, --augment and --augment-context apply to cocoa and pearl"
            )
        return algo_config
    changes: dict[str, Any] = {}
    contrastive = algo_config.contrastive_weight > 0
    if objective is not None:
        if objective != "none" and not contrastive:
            if strict:
                raise ValueError(
                    f"--objective {objective} applies to --algo cocoa (pearl has no context "
                    "objective)"
                )
        else:
            changes["objective"] = objective
            changes["augment"] = OBJECTIVE_REGISTRY.get(objective).default_augment
            contrastive = contrastive and objective != "none"
    if augment_context:
        changes["augment_context"] = True
    if augment_names is not None:
        if not contrastive and not augment_context:
            if strict:
                raise ValueError(
                    "--augment applies to a context objective (--algo cocoa) or, with "
                    "--augment-context, to PEARL's context"
                )
        else:
            changes["augment"] = augment_names
    return replace(algo_config, **changes)
