"""MAML-TRPO (Finn et al., 2017): a policy initialisation θ that one policy-gradient step adapts.

Per iteration, for each task T_i of a meta-batch (all tensors ``(task, batch, ·)``):

    D_i^pre  ~ π_θ                                   inner_episodes exploration episodes
    θ'_i     = θ − α ∇_θ L^PG(θ; D_i^pre)            num_inner_steps vanilla PG steps, lr α
    D_i^post ~ π_θ'_i                                outer_episodes episodes

and the meta-update is TRPO on the post-adaptation data, differentiating through θ'_i(θ):

    min_θ  L(θ)  = mean_i −E_{D_i^post}[ π_θ'_i(θ)(a|s) / π_θ'_i,old(a|s) · Â ]
    s.t.   KL̄(θ) = mean_i E_{s ∈ D_i^post}[ KL(π_θ'_i,old(·|s) ‖ π_θ'_i(θ)(·|s)) ] ≤ δ

with the step direction x = F⁻¹ ∇L from conjugate gradient on Fisher-vector products
F v = ∇²KL̄ v (+ damping · v), the largest step √(2δ / xᵀFx) along it, and a backtracking line
search that accepts the first shrunken step that lowers L and keeps KL̄ ≤ δ (else no step).

The inner step is functional: ``torch.func.functional_call`` evaluates the policy with
per-task parameters (``vmap``-ed over the task axis) and ``torch.autograd.grad(...,
create_graph=True)`` keeps the inner gradient in the graph, so ∇_θ L includes the second
derivatives of the inner loss (full MAML, not first-order). Advantages come from garage's
linear feature baseline, refitted per task and batch, with GAE (λ = 1: returns − baseline).

Rewards: the inner (adaptation) step uses the context reward, the one a meta-test explorer
observes (sparse on sparse families); the outer objective uses the dense RL reward, as
PEARL's critic does. On dense families the two are the same.

``train_iteration`` is ``collect_data`` (D^pre, the inner step, D^post, advantages) then
``update_on`` (the TRPO meta-update), so the update can be timed on its own.

At meta-test: ``exploration_policy`` is the stochastic meta-policy π_θ; ``adapt`` takes one
(``num_inner_steps``) inner step on the exploration episodes and returns the adapted policy
acting with its mean action.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from cocoa.envs import Task, TaskFamily
from cocoa.nets import mlp
from cocoa.registry import AlgorithmSpec
from cocoa.rollout import collect
from cocoa.seeding import meta_test_generator, rng_state, seeded, set_rng_state
from cocoa.types import Episode, Policy, Transition

from .common import LinearFeatureBaseline, discount_cumsum, gae, gaussian_log_prob

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MamlTrpoConfig:
    """Hyperparameters of MAML-TRPO (defaults: garage's ML1 launcher, MAML's paper)."""

    hidden: tuple[int, ...] = (100, 100)  # tanh MLP for the mean
    init_std: float = 1.0  # initial σ of the state-independent Gaussian
    meta_batch_size: int = 20  # tasks per meta-update
    inner_episodes: int = 10  # exploration episodes per task for the inner step
    outer_episodes: int = 10  # post-adaptation episodes per task for the meta-update
    num_inner_steps: int = 1
    inner_lr: float = 0.1  # α
    discount: float = 0.99
    gae_lambda: float = 1.0
    center_advantages: bool = True  # standardise Â per task and batch
    baseline_reg: float = 1e-5  # ridge coefficient of the linear feature baseline
    max_kl: float = 0.01  # δ
    cg_iters: int = 10
    cg_damping: float = 1e-5  # F + damping·I (garage's hvp_reg_coeff)
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15


def preset(family: TaskFamily, name: str) -> MamlTrpoConfig:
    """``paper``: the published settings; ``quick``: small enough to learn on a CPU.

    The inner step always uses the thesis protocol's exploration count
    (``family.explore_episodes``): meta-training adapts on as many episodes as meta-testing.
    """
    explore = family.explore_episodes
    if name == "paper":
        if family.kind == "metaworld":  # garage maml_trpo_metaworld_ml1_push
            return MamlTrpoConfig(meta_batch_size=20, inner_episodes=explore, outer_episodes=10)
        if family.kind == "locomotion":  # MAML's locomotion: 40 tasks, 20 episodes each
            return MamlTrpoConfig(meta_batch_size=40, inner_episodes=explore, outer_episodes=20)
        return MamlTrpoConfig(meta_batch_size=20, inner_episodes=explore, outer_episodes=20)
    if name == "quick":
        if family.kind == "point":
            return MamlTrpoConfig(
                hidden=(64, 64), meta_batch_size=20, inner_episodes=explore, outer_episodes=4
            )
        return MamlTrpoConfig(
            hidden=(64, 64), meta_batch_size=10, inner_episodes=explore, outer_episodes=4
        )
    raise ValueError(f"unknown preset {name!r}")


# ------------------------------------------------------------------------------- policy


class GaussianMLPPolicy(nn.Module):
    """π_θ(a | s) = N(μ_θ(s), diag σ²) with a learned, state-independent log σ."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], init_std: float):
        super().__init__()
        self.mean = mlp(
            obs_dim, act_dim, hidden, activation=nn.Tanh, out_init_scale=None, hidden_init="torch"
        )
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ, both ``(..., act_dim)``."""
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)


def gaussian_kl(
    mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor, log_std_q: torch.Tensor
) -> torch.Tensor:
    """KL(N_p ‖ N_q) for diagonal Gaussians, summed over the action dimension: ``(...)``."""
    var_p, var_q = torch.exp(2 * log_std_p), torch.exp(2 * log_std_q)
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return kl.sum(-1)


class GaussianActor:
    """The ``Policy`` protocol around one parameter set θ of a ``GaussianMLPPolicy``.

    Acting runs the MLP in numpy: at batch size 1 that is ~3× faster than torch.
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        params: Params,
        deterministic: bool,
        generator: torch.Generator,
    ):
        as_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731 (values only)
        self.layers = [
            (as_np(params[f"mean.{j}.weight"]), as_np(params[f"mean.{j}.bias"]))
            for j, layer in enumerate(policy.mean)
            if isinstance(layer, nn.Linear)
        ]
        self.std = np.exp(as_np(params["log_std"]))
        self.deterministic, self.generator = deterministic, generator

    def reset(self) -> None:
        pass

    def act(self, observation: np.ndarray) -> np.ndarray:
        h = np.asarray(observation, dtype=np.float64)
        for j, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if j < len(self.layers) - 1:
                h = np.tanh(h)
        if self.deterministic:
            return h.astype(np.float32)
        noise = torch.randn(h.shape, generator=self.generator, device=self.generator.device)
        return (h + self.std * noise.cpu().numpy()).astype(np.float32)

    def observe(self, transition: Transition) -> None:
        pass


# ------------------------------------------------------------------------ batches of data


class TaskBatch(NamedTuple):
    """All steps of each task's episodes, one padded row per task."""

    obs: torch.Tensor  # (task, B, obs_dim)
    actions: torch.Tensor  # (task, B, act_dim)
    advantages: torch.Tensor  # (task, B)
    mask: torch.Tensor  # (task, B), 1 on real steps, 0 on padding


class MetaBatch(NamedTuple):
    """One iteration's data: each task's pre- and post-adaptation episodes and batches."""

    pre_episodes: list[list[Episode]]  # D^pre, sampled with π_θ
    post_episodes: list[list[Episode]]  # D^post, sampled with π_θ'_i
    pre: TaskBatch  # D^pre with context-reward advantages (the inner step's data)
    post: TaskBatch  # D^post with RL-reward advantages (the meta-update's data)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each task's real steps, then over tasks: ``(task, B)`` → scalar."""
    return ((x * mask).sum(-1) / mask.sum(-1)).mean()


def make_batch(
    episodes: list[list[Episode]],
    cfg: MamlTrpoConfig,
    use_context_reward: bool,
    device: torch.device,
) -> TaskBatch:
    """Fits a linear baseline per task, computes GAE advantages and pads to ``(task, B, ·)``."""
    rows = []
    for task_episodes in episodes:  # data preparation only: the update itself is batched
        rewards = [e.context_rewards if use_context_reward else e.rewards for e in task_episodes]
        baseline = LinearFeatureBaseline(cfg.baseline_reg)
        baseline.fit(
            [e.observations for e in task_episodes],
            [discount_cumsum(r, cfg.discount) for r in rewards],
        )
        adv = np.concatenate(
            [
                gae(
                    r,
                    baseline.predict(e.observations),
                    np.zeros_like(r),
                    cfg.discount,
                    cfg.gae_lambda,
                )
                for e, r in zip(task_episodes, rewards)
            ]
        )
        if cfg.center_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        obs = np.concatenate([e.observations for e in task_episodes])
        actions = np.concatenate([e.actions for e in task_episodes])
        rows.append((obs, actions, adv))
    n, width = len(rows), max(len(r[2]) for r in rows)
    obs_dim, act_dim = rows[0][0].shape[1], rows[0][1].shape[1]
    obs = np.zeros((n, width, obs_dim), dtype=np.float32)
    actions = np.zeros((n, width, act_dim), dtype=np.float32)
    adv = np.zeros((n, width), dtype=np.float32)
    mask = np.zeros((n, width), dtype=np.float32)
    for i, (o, a, v) in enumerate(rows):
        obs[i, : len(v)], actions[i, : len(v)], adv[i, : len(v)], mask[i, : len(v)] = o, a, v, 1
    as_t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    return TaskBatch(as_t(obs), as_t(actions), as_t(adv), as_t(mask))


# ------------------------------------------------------------------- TRPO's two routines


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iters: int,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Solves A x = b for symmetric positive-definite A given only v ↦ A v."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = matvec(p)
        step = rr / (p @ Ap)
        x = x + step * p
        r = r - step * Ap
        rr_new = r @ r
        if rr_new < residual_tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def backtracking_line_search(
    evaluate: Callable[[torch.Tensor], tuple[float, float]],
    theta: torch.Tensor,
    full_step: torch.Tensor,
    loss_before: float,
    max_kl: float,
    ratio: float,
    max_backtracks: int,
) -> tuple[torch.Tensor, float, float, bool]:
    """Tries θ − ratio^k · step for k = 0, 1, …; keeps the first with a lower loss and
    KL ≤ ``max_kl`` (``evaluate(θ) -> (loss, kl)``). Returns ``(θ, loss, kl, accepted)``;
    when no step qualifies, θ is unchanged."""
    for k in range(max_backtracks):
        candidate = theta - ratio**k * full_step
        loss, kl = evaluate(candidate)
        if math.isfinite(loss) and loss < loss_before and kl <= max_kl:
            return candidate, loss, kl, True
    return theta, loss_before, 0.0, False


# --------------------------------------------------------------------------- the learner


class MamlTrpo:
    """MAML-TRPO as a ``MetaLearner``."""

    metric_names = (
        "pre_adapt_return",
        "post_adapt_return",
        "surrogate_before",
        "surrogate_after",
        "kl",
        "step_accepted",
        "entropy",
    )

    def __init__(
        self,
        cfg: MamlTrpoConfig,
        family: TaskFamily,
        train_tasks: list[Task],
        device: torch.device,
        seed: int,
    ):
        self.cfg, self.family, self.train_tasks = cfg, family, list(train_tasks)
        self.device = torch.device(device)
        with seeded(seed):
            self.policy = GaussianMLPPolicy(
                family.obs_dim, family.action_dim, cfg.hidden, cfg.init_std
            ).to(self.device)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.seed = seed
        self.env = family.make_env(self.train_tasks[0])
        self.env_steps = 0

    # ------------------------------------------------------------------ the inner step

    def meta_params(self) -> Params:
        return dict(self.policy.named_parameters())

    def _forward(self, params: Params, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ of per-task parameters (leading task axis) on ``(task, B, obs_dim)``."""
        return torch.func.vmap(lambda p, o: functional_call(self.policy, p, (o,)))(params, obs)

    def inner_update(self, params: Params, batch: TaskBatch, create_graph: bool) -> Params:
        """θ'_i = θ − α ∇_θ L^PG(θ; D_i) for every task i of ``batch`` at once.

        Returns per-task parameters with a leading task axis. With ``create_graph`` the
        result stays differentiable w.r.t. ``params`` through the inner gradient.
        """
        n_tasks = batch.obs.shape[0]
        # θ repeated per task, (task, *shape): task i's loss touches only row i, so the
        # gradient of the summed loss w.r.t. it holds every task's own gradient
        theta = {k: p.expand(n_tasks, *p.shape) for k, p in params.items()}
        with torch.enable_grad():  # the inner step is a gradient, even when called for values
            for _ in range(self.cfg.num_inner_steps):
                mean, log_std = self._forward(theta, batch.obs)  # (task, B, act_dim)
                log_pi = gaussian_log_prob(mean, log_std, batch.actions)  # (task, B)
                per_task = -(log_pi * batch.advantages * batch.mask).sum(-1) / batch.mask.sum(-1)
                grads = torch.autograd.grad(
                    per_task.sum(), list(theta.values()), create_graph=create_graph
                )
                theta = {k: v - self.cfg.inner_lr * g for (k, v), g in zip(theta.items(), grads)}
        return theta

    def post_adaptation(
        self, params: Params, pre: TaskBatch, post: TaskBatch, create_graph: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ of the adapted policies π_θ'_i(params) on each task's post-adaptation
        observations, ``(task, B, act_dim)`` each."""
        adapted = self.inner_update(params, pre, create_graph)
        return self._forward(adapted, post.obs)

    @staticmethod
    def surrogate_and_kl(
        mean: torch.Tensor,
        log_std: torch.Tensor,
        old_mean: torch.Tensor,
        old_log_std: torch.Tensor,
        post: TaskBatch,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TRPO's surrogate loss L and mean KL(π_old ‖ π) over the meta-batch."""
        log_pi = gaussian_log_prob(mean, log_std, post.actions)  # (task, B)
        log_pi_old = gaussian_log_prob(old_mean, old_log_std, post.actions)
        ratio = torch.exp(log_pi - log_pi_old)
        loss = -masked_mean(ratio * post.advantages, post.mask)
        kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), post.mask)
        return loss, kl

    # --------------------------------------------------------------------- iteration

    def _sample_tasks(self) -> np.ndarray:
        n, k = len(self.train_tasks), self.cfg.meta_batch_size
        return self.rng.choice(n, size=k, replace=k > n)

    def _collect(self, task_ids: np.ndarray, params: list[Params], n: int) -> list[list[Episode]]:
        episodes = []
        for i, p in zip(task_ids, params):
            actor = GaussianActor(self.policy, p, deterministic=False, generator=self.gen)
            eps = collect(self.env, self.train_tasks[i], actor, n, self.rng)
            self.env_steps += sum(len(e) for e in eps)
            episodes.append(eps)
        return episodes

    def collect_data(self) -> MetaBatch:
        """D^pre with π_θ on a meta-batch of tasks, the adapted θ'_i, then D^post with π_θ'_i
        (the collection half of ``train_iteration``)."""
        cfg = self.cfg
        task_ids = self._sample_tasks()
        theta = self.meta_params()
        pre_eps = self._collect(task_ids, [theta] * len(task_ids), cfg.inner_episodes)
        pre = make_batch(pre_eps, cfg, use_context_reward=True, device=self.device)
        # detach: sampling needs the adapted parameters' values only
        adapted = {k: v.detach() for k, v in self.inner_update(theta, pre, False).items()}
        per_task = [{k: v[i] for k, v in adapted.items()} for i in range(len(task_ids))]
        post_eps = self._collect(task_ids, per_task, cfg.outer_episodes)
        post = make_batch(post_eps, cfg, use_context_reward=False, device=self.device)
        return MetaBatch(pre_eps, post_eps, pre, post)

    def update_on(self, data: MetaBatch) -> dict[str, float]:
        """The TRPO meta-update of θ on one iteration's data (the update half of
        ``train_iteration``), every task of the meta-batch at once: the inner step is
        ``vmap``-ed over tasks, so no Python loop runs over tasks or episodes.

        Time it on its own with ``data = learner.collect_data()`` then
        ``learner.update_on(data)``. Returns the TRPO metrics (``surrogate_before``,
        ``surrogate_after``, ``kl``, ``step_accepted``, ``entropy``).
        """
        cfg = self.cfg
        pre, post = data.pre, data.post
        theta = self.meta_params()

        # π_old: the adapted policies that collected D^post; constants of this TRPO step
        old_mean, old_log_std = (x.detach() for x in self.post_adaptation(theta, pre, post, False))
        mean, log_std = self.post_adaptation(theta, pre, post, create_graph=True)
        loss, kl = self.surrogate_and_kl(mean, log_std, old_mean, old_log_std, post)
        params = list(theta.values())
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params, retain_graph=True)])
        grad_kl = torch.autograd.grad(kl, params, create_graph=True)
        grad_kl = torch.cat([x.reshape(-1) for x in grad_kl])

        def fisher_vector(v: torch.Tensor) -> torch.Tensor:  # (∇²KL̄ + damping·I) v
            hv = torch.autograd.grad(grad_kl @ v, params, retain_graph=True)
            return torch.cat([x.reshape(-1) for x in hv]) + cfg.cg_damping * v

        x = conjugate_gradient(fisher_vector, g, cfg.cg_iters)
        step_size = torch.sqrt(2 * cfg.max_kl / (x @ fisher_vector(x) + 1e-8))
        # detach: the step is a fixed vector; the line search only evaluates along it
        full_step = (step_size * x).detach()
        theta_old = nn.utils.parameters_to_vector(params).detach()

        def evaluate(flat: torch.Tensor) -> tuple[float, float]:
            candidate = self._unflatten(flat)
            m, s = self.post_adaptation(candidate, pre, post, create_graph=False)
            new_loss, new_kl = self.surrogate_and_kl(m, s, old_mean, old_log_std, post)
            return float(new_loss.detach()), float(new_kl.detach())

        theta_new, loss_after, kl_after, accepted = backtracking_line_search(
            evaluate,
            theta_old,
            full_step,
            float(loss.detach()),
            cfg.max_kl,
            cfg.backtrack_ratio,
            cfg.max_backtracks,
        )
        with torch.no_grad():  # writing the accepted parameters, not a differentiable op
            nn.utils.vector_to_parameters(theta_new, params)

        entropy = float((self.policy.log_std.detach() + 0.5 * math.log(2 * math.pi * math.e)).sum())
        return {
            "surrogate_before": float(loss.detach()),
            "surrogate_after": loss_after,
            "kl": kl_after,
            "step_accepted": float(accepted),
            "entropy": entropy,
        }

    def train_iteration(self) -> dict[str, float]:
        """``collect_data`` then ``update_on``; the returns of D^pre and D^post join the
        update's metrics."""
        data = self.collect_data()
        metrics = self.update_on(data)
        return {
            "pre_adapt_return": float(
                np.mean([e.rewards.sum() for t in data.pre_episodes for e in t])
            ),
            "post_adapt_return": float(
                np.mean([e.rewards.sum() for t in data.post_episodes for e in t])
            ),
        } | metrics

    def _unflatten(self, flat: torch.Tensor) -> Params:
        """A parameter dict (leaves that require grad, for the inner step) from a vector."""
        out, i = {}, 0
        for name, p in self.policy.named_parameters():
            out[name] = flat[i : i + p.numel()].view_as(p).clone().requires_grad_(True)
            i += p.numel()
        return out

    # ----------------------------------------------------------------------- meta-test

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> Policy:
        """The stochastic meta-policy π_θ."""
        params = {k: v.detach() for k, v in self.meta_params().items()}  # values only
        gen = meta_test_generator(self.seed, self.env_steps, task, self.device, run)
        return GaussianActor(self.policy, params, deterministic=False, generator=gen)

    def adapt(self, policy: Policy, episodes: list[Episode]) -> Policy:
        """π_θ' after the inner step on ``episodes``, acting with its mean action."""
        batch = make_batch([episodes], self.cfg, use_context_reward=True, device=self.device)
        adapted = self.inner_update(self.meta_params(), batch, create_graph=False)
        params = {k: v[0].detach() for k, v in adapted.items()}  # values only
        return GaussianActor(self.policy, params, deterministic=True, generator=self.gen)

    # --------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "env_steps": self.env_steps,
            **rng_state(self.rng, gen=self.gen),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.env_steps = int(state["env_steps"])
        set_rng_state(state, self.rng, gen=self.gen)


SPEC = AlgorithmSpec("maml-trpo", MamlTrpoConfig, preset, MamlTrpo)
