"""RL²-PPO (Duan et al., 2016; Wang et al., 2016): a recurrent policy whose hidden state adapts.

The GRU reads x_t = [s_t, a_{t−1}, r_{t−1}, d_{t−1}] (observation, previous action, previous
context reward, "the previous step ended an episode") and its hidden state h_t is carried
across every episode of a *trial*: ``episodes_per_trial`` consecutive episodes on one task.
Only a new trial starts from h = 0, so whatever the agent learnt about the task in earlier
episodes is in h when later ones begin.

Per iteration (all tensors ``(trial, time, ·)``; one trial per sampled training task):

    trials      ~ π_θ on ``meta_batch_size`` tasks, each one long sequence of T steps
    Â_t         = GAE(γ, λ) over the whole trial, V(h_t) from a second GRU; the only cut is
                  the trial's end (episode boundaries inside a trial are not terminal)
    θ           ← PPO: ``epochs`` passes over minibatches of whole trials, each run through
                  the GRUs from h = 0, clipped ratio objective, value MSE

The value GRU predicts returns standardised by running statistics (updated per iteration),
so one learning rate fits families whose trial returns differ by orders of magnitude.

Rewards: the GRU input is the context reward (what a meta-test explorer observes: sparse on
sparse families); the PPO objective uses the dense RL reward. On dense families they agree.

``train_iteration`` is ``collect_data`` (trials, π_old, GAE, targets) then ``update_on`` (the
PPO epochs), so the update can be timed on its own.

At meta-test: ``exploration_policy`` is a fresh trial (h = 0), sampling actions;
``adapt`` returns that same policy, its hidden state carried on, acting with mean actions.
The ``Policy.reset`` at each episode start marks the episode boundary only; it never clears h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from cocoa.envs import Task, TaskFamily
from cocoa.nets import adam, to_device
from cocoa.registry import AlgorithmSpec
from cocoa.rollout import collect
from cocoa.seeding import meta_test_generator, rng_state, seeded, set_rng_state
from cocoa.types import Episode, Policy, Transition

from .common import gae, gaussian_log_prob


@dataclass(frozen=True)
class Rl2PpoConfig:
    """Hyperparameters of RL²-PPO.

    Defaults: garage's RL2-PPO Metaworld ML1 launcher (GRU 64, lr 1e-3, 10 trials per
    iteration, γ 0.99, λ 0.95, ε 0.2, 10 epochs, minibatches of 32 trials). Deviations: a
    GRU value function instead of garage's linear feature baseline, standardised advantages
    and gradient-norm clipping (modern PPO practice), and no entropy bonus (garage's "max"
    entropy term, with a state-independent σ and a stopped entropy gradient, only adds a
    constant to every reward). A trial is the thesis protocol's meta-test trial (see
    ``preset``), not garage's 10 episodes.
    """

    hidden: int = 64  # GRU width of the policy and of the value function
    init_std: float = 1.0  # initial σ of the state-independent Gaussian
    meta_batch_size: int = 10  # trials (tasks) per iteration
    episodes_per_trial: int = 13  # presets: the meta-test trial, n_explore + 3 evaluation
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2  # PPO's ε
    lr: float = 1e-3
    epochs: int = 10
    minibatch_trials: int = 32  # trials per minibatch (all of them when fewer)
    entropy_coef: float = 0.0
    normalize_advantages: bool = True
    max_grad_norm: float = 0.5


def preset(family: TaskFamily, name: str) -> Rl2PpoConfig:
    """``paper``: the published settings; ``quick``: small enough to learn on a CPU.

    A trial covers the whole meta-test trial of the thesis protocol (the exploration
    episodes plus the 3 evaluation episodes), so the GRU is tested on trials as long as
    those it was trained on.
    """
    trial = family.explore_episodes + 3
    if name == "paper":  # garage rl2_ppo_metaworld_ml1_push / rl2_ppo_halfcheetah
        return Rl2PpoConfig(hidden=64, meta_batch_size=10, episodes_per_trial=trial)
    if name == "quick":
        if family.kind == "point":  # measured on point-robot: σ₀ 0.5 and lr 3e-3 learn faster
            return Rl2PpoConfig(
                init_std=0.5, lr=3e-3, meta_batch_size=20, episodes_per_trial=trial,
                minibatch_trials=10,
            )  # fmt: skip
        return Rl2PpoConfig(hidden=64, meta_batch_size=10, episodes_per_trial=trial)  # = paper
    raise ValueError(f"unknown preset {name!r}")


# ------------------------------------------------------------------------------ networks


class RecurrentNet(nn.Module):
    """A GRU over input sequences with a linear head: ``(N, T, in)`` → ``(N, T, out)``."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, out_init_scale: float = 1.0):
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, out_dim)
        with torch.no_grad():  # initialisation, not a differentiable op
            self.head.weight.mul_(out_init_scale)
            self.head.bias.zero_()

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs ``(N, T, out)`` and the last hidden state ``(1, N, hidden)``."""
        y, h = self.gru(x, h)
        return self.head(y), h


class RL2Networks(nn.Module):
    """π_θ(a_t | h_t) = N(μ(h_t), diag σ²) and the standardised value v(h'_t)."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int, init_std: float):
        super().__init__()
        self.mean = RecurrentNet(in_dim, act_dim, hidden, out_init_scale=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        self.value = RecurrentNet(in_dim, 1, hidden)


def trial_inputs(episodes: list[Episode]) -> np.ndarray:
    """x_t = [s_t, a_{t−1}, r_{t−1}, d_{t−1}] for one trial's episodes: ``(T, in_dim)``.

    The previous action, context reward and episode-end flag are zero at the trial's first
    step; d_{t−1} = 1 at the first step of every later episode.
    """
    obs = np.concatenate([e.observations for e in episodes])
    actions = np.concatenate([e.actions for e in episodes])
    rewards = np.concatenate([e.context_rewards for e in episodes])
    ends = np.concatenate([np.eye(1, len(e), len(e) - 1)[0] for e in episodes])
    prev = np.zeros((len(obs), actions.shape[1] + 2), dtype=np.float32)
    prev[1:] = np.concatenate([actions, rewards[:, None], ends[:, None]], axis=1)[:-1]
    return np.concatenate([obs, prev], axis=1).astype(np.float32)


class RL2Actor:
    """One trial of the recurrent policy: the ``Policy`` protocol with a carried hidden state.

    ``reset`` (an episode starts) keeps h; a new trial is a new ``RL2Actor``. Acting runs the
    GRU cell in numpy on a copy of the weights (a trial's weights never change): at batch
    size 1 that is several times faster than torch.
    """

    def __init__(self, nets: RL2Networks, generator: torch.Generator, deterministic: bool):
        as_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731 (values)
        gru, head = nets.mean.gru, nets.mean.head
        self.w_ih, self.w_hh = as_np(gru.weight_ih_l0), as_np(gru.weight_hh_l0)  # (3H, ·)
        self.b_ih, self.b_hh = as_np(gru.bias_ih_l0), as_np(gru.bias_hh_l0)
        self.w_out, self.b_out = as_np(head.weight), as_np(head.bias)
        self.std = np.exp(as_np(nets.log_std))
        self.generator, self.deterministic = generator, deterministic
        self.h = np.zeros(gru.hidden_size)  # the trial starts from h = 0
        self.prev = np.zeros(len(self.std) + 2)  # [a_{t−1}, r_{t−1}, d_{t−1}]
        self.steps = 0

    def reset(self) -> None:
        if self.steps > 0:  # an episode boundary inside the trial (observe set d already)
            self.prev[-1] = 1.0

    def act(self, observation: np.ndarray) -> np.ndarray:
        x = np.concatenate([np.asarray(observation, dtype=np.float64), self.prev])
        # torch.nn.GRU's cell, gates in the order r, z, n
        gi_r, gi_z, gi_n = np.split(self.w_ih @ x + self.b_ih, 3)
        gh_r, gh_z, gh_n = np.split(self.w_hh @ self.h + self.b_hh, 3)
        r = 1.0 / (1.0 + np.exp(-(gi_r + gh_r)))
        z = 1.0 / (1.0 + np.exp(-(gi_z + gh_z)))
        n = np.tanh(gi_n + r * gh_n)
        self.h = (1.0 - z) * n + z * self.h
        self.steps += 1
        mean = self.w_out @ self.h + self.b_out
        if self.deterministic:
            return mean.astype(np.float32)
        noise = torch.randn(mean.shape, generator=self.generator, device=self.generator.device)
        return (mean + self.std * noise.cpu().numpy()).astype(np.float32)

    def observe(self, transition: Transition) -> None:
        self.prev[:-2] = transition.action
        self.prev[-2] = transition.reward
        self.prev[-1] = float(transition.done)


# ------------------------------------------------------------------------------- batches


class TrialBatch(NamedTuple):
    """Trials padded to a common length T."""

    inputs: torch.Tensor  # (trial, T, in_dim)
    actions: torch.Tensor  # (trial, T, act_dim)
    log_pi_old: torch.Tensor  # (trial, T)
    advantages: torch.Tensor  # (trial, T)
    value_targets: torch.Tensor  # (trial, T), standardised returns
    mask: torch.Tensor  # (trial, T), 1 on real steps


class TrialData(NamedTuple):
    """One iteration's data: the trials as episodes and as the padded PPO batch."""

    trials: list[list[Episode]]
    batch: TrialBatch


class RunningMoments:
    """Running mean and variance (parallel Welford merge) of the value targets."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x: np.ndarray) -> None:
        n, mean, var = len(x), float(np.mean(x)), float(np.var(x))
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(self.var) + 1e-8


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum()


# --------------------------------------------------------------------------- the learner


class Rl2Ppo:
    """RL²-PPO as a ``MetaLearner``."""

    metric_names = (
        "train_return",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
    )

    def __init__(
        self,
        cfg: Rl2PpoConfig,
        family: TaskFamily,
        train_tasks: list[Task],
        device: torch.device,
        seed: int,
    ):
        self.cfg, self.family, self.train_tasks = cfg, family, list(train_tasks)
        self.device = torch.device(device)
        in_dim = family.obs_dim + family.action_dim + 2
        with seeded(seed):
            self.nets = RL2Networks(in_dim, family.action_dim, cfg.hidden, cfg.init_std)
        self.nets.to(self.device)
        self.optimizer = adam(self.nets.parameters(), cfg.lr, self.device)
        self.returns = RunningMoments()
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.seed = seed
        self.env = family.make_env(self.train_tasks[0])
        self.env_steps = 0

    def _collect_trials(self) -> list[list[Episode]]:
        n, k = len(self.train_tasks), self.cfg.meta_batch_size
        trials = []
        for i in self.rng.choice(n, size=k, replace=k > n):
            actor = RL2Actor(self.nets, self.gen, deterministic=False)  # a new trial: h = 0
            episodes = collect(
                self.env, self.train_tasks[i], actor, self.cfg.episodes_per_trial, self.rng
            )
            self.env_steps += sum(len(e) for e in episodes)
            trials.append(episodes)
        return trials

    def _make_batch(self, trials: list[list[Episode]]) -> TrialBatch:
        """Pads the trials to ``(trial, T, ·)``; old log-probabilities, GAE and targets."""
        cfg, dev = self.cfg, self.device
        lengths = [sum(len(e) for e in t) for t in trials]
        n, width = len(trials), max(lengths)
        inputs = np.zeros((n, width, self.nets.mean.gru.input_size), dtype=np.float32)
        actions = np.zeros((n, width, self.family.action_dim), dtype=np.float32)
        rewards = np.zeros((n, width), dtype=np.float32)
        mask = np.zeros((n, width), dtype=np.float32)
        for i, (t, length) in enumerate(zip(trials, lengths)):
            inputs[i, :length] = trial_inputs(t)
            actions[i, :length] = np.concatenate([e.actions for e in t])
            rewards[i, :length] = np.concatenate([e.rewards for e in t])
            mask[i, :length] = 1.0
        x, a = torch.as_tensor(inputs, device=dev), torch.as_tensor(actions, device=dev)
        with torch.no_grad():  # π_old and V_old are constants of the PPO objective
            mean, _ = self.nets.mean(x)
            log_pi_old = gaussian_log_prob(mean, self.nets.log_std, a)  # (trial, T)
            v, _ = self.nets.value(x)
        values = v.squeeze(-1).cpu().numpy() * self.returns.std + self.returns.mean
        # the trial is one sequence: the only cut (no bootstrap) is after its last step
        dones = np.zeros_like(rewards)
        dones[np.arange(n), np.asarray(lengths) - 1] = 1.0
        adv = gae(rewards, values * mask, dones, cfg.discount, cfg.gae_lambda)  # (trial, T)
        returns = adv + values
        self.returns.update(returns[mask > 0])
        targets = (returns - self.returns.mean) / self.returns.std
        if cfg.normalize_advantages:
            valid = adv[mask > 0]
            adv = (adv - valid.mean()) / (valid.std() + 1e-8)
        as_t = lambda z: torch.as_tensor(z, dtype=torch.float32, device=dev)  # noqa: E731
        return TrialBatch(x, a, log_pi_old, as_t(adv * mask), as_t(targets * mask), as_t(mask))

    def collect_data(self) -> TrialData:
        """One trial on each of ``meta_batch_size`` random training tasks, padded to a batch
        with π_old, GAE advantages and value targets (the collection half of
        ``train_iteration``; it also updates the running return statistics)."""
        trials = self._collect_trials()
        return TrialData(trials, self._make_batch(trials))

    def update_on(self, data: TrialData) -> dict[str, float]:
        """PPO on one iteration's batch (the update half of ``train_iteration``):
        ``epochs`` passes over minibatches of whole trials, each minibatch one batched GRU
        pass (no Python loop over trials or steps).

        Time it on its own with ``data = learner.collect_data()`` then
        ``learner.update_on(data)``. Returns the PPO metrics averaged over minibatches
        (``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_fraction``);
        they are read back from the device once, at the end.
        """
        cfg, batch = self.cfg, data.batch
        n = batch.inputs.shape[0]
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in self.metric_names[1:]}
        for _ in range(cfg.epochs):
            order = to_device(self.rng.permutation(n), self.device)
            for start in range(0, n, cfg.minibatch_trials):
                idx = order[start : start + cfg.minibatch_trials]
                mb = TrialBatch(*(f[idx] for f in batch))  # whole trials: (m, T, ·)
                mean, _ = self.nets.mean(mb.inputs)  # from h = 0, as when acting
                log_pi = gaussian_log_prob(mean, self.nets.log_std, mb.actions)  # (m, T)
                log_ratio = log_pi - mb.log_pi_old
                ratio = log_ratio.exp()
                surrogate = torch.min(
                    ratio * mb.advantages,
                    ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * mb.advantages,
                )
                policy_loss = -masked_mean(surrogate, mb.mask)
                v, _ = self.nets.value(mb.inputs)
                value_loss = 0.5 * masked_mean((v.squeeze(-1) - mb.value_targets) ** 2, mb.mask)
                entropy = (self.nets.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()
                loss = policy_loss + value_loss - cfg.entropy_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.nets.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():  # diagnostics only
                    stats["approx_kl"].append(masked_mean(ratio - 1 - log_ratio, mb.mask))
                    clipped = ((ratio - 1).abs() > cfg.clip).float()
                    stats["clip_fraction"].append(masked_mean(clipped, mb.mask))
                stats["policy_loss"].append(policy_loss.detach())
                stats["value_loss"].append(value_loss.detach())
                stats["entropy"].append(entropy.detach())
        # one read-back of the (metric, minibatch) values, averaged in float64 on the host
        values = (
            torch.stack([torch.stack(v) for v in stats.values()]).tolist()
            if cfg.epochs > 0
            else [[] for _ in stats]
        )
        return {k: float(np.mean(v)) for k, v in zip(stats, values)}

    def train_iteration(self) -> dict[str, float]:
        """``collect_data`` then ``update_on``; the trials' mean return joins the metrics."""
        data = self.collect_data()
        metrics = self.update_on(data)
        train_return = float(np.mean([e.rewards.sum() for t in data.trials for e in t]))
        return {"train_return": train_return} | metrics

    # ----------------------------------------------------------------------- meta-test

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> Policy:
        """A new trial (h = 0) of the stochastic recurrent policy."""
        gen = meta_test_generator(self.seed, self.env_steps, task, self.device, run)
        return RL2Actor(self.nets, gen, deterministic=False)

    def adapt(self, policy: Policy, episodes: list[Episode]) -> Policy:
        """The same trial, hidden state carried on, now acting with mean actions."""
        assert isinstance(policy, RL2Actor)
        policy.deterministic = True
        return policy

    # --------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        r = self.returns
        return {
            "nets": self.nets.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "returns": (r.mean, r.var, r.count),
            "env_steps": self.env_steps,
            **rng_state(self.rng, gen=self.gen),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.returns.mean, self.returns.var, self.returns.count = state["returns"]
        self.env_steps = int(state["env_steps"])
        set_rng_state(state, self.rng, gen=self.gen)


SPEC = AlgorithmSpec("rl2-ppo", Rl2PpoConfig, preset, Rl2Ppo)
