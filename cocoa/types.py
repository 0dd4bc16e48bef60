"""Typed values and the one Protocol every algorithm follows.

* ``Episode``: one trajectory as arrays, shapes ``(T, ...)``.
* ``Policy``: what a rollout drives: ``reset`` at each episode start, ``act`` per step and
  ``observe`` after each step (stateful policies such as RL²'s GRU or PEARL's posterior
  sampling use it; stateless ones ignore it).
* ``MetaLearner``: ``train_iteration()`` collects data and updates; ``exploration_policy()``
  is run on a new task; ``adapt(episodes)`` returns the policy to evaluate (garage's
  explore → adapt → evaluate contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from cocoa.envs import Task


@dataclass(frozen=True)
class Episode:
    """One trajectory; all arrays have ``T`` rows.

    Attributes:
        observations: ``(T, obs_dim)`` observations s_t.
        actions: ``(T, act_dim)`` actions in ``[-1, 1]``.
        rewards: ``(T,)`` the env's (dense) reward, used for RL.
        context_rewards: ``(T,)`` the reward used for context and evaluation
            (the sparse reward on sparse families, else equal to ``rewards``).
        next_observations: ``(T, obs_dim)``.
        terminals: ``(T,)`` 1.0 where the MDP terminated (not truncated).
        successes: ``(T,)`` per-step success (zeros where the family has none).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    context_rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    successes: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        """Undiscounted return of the context/evaluation reward."""
        return float(np.sum(self.context_rewards))

    @property
    def success(self) -> bool:
        """Success if any step succeeded (Metaworld v3's rule)."""
        return bool(np.any(self.successes > 0))


class Transition(NamedTuple):
    """One step, as ``Policy.observe`` receives it."""

    observation: np.ndarray
    action: np.ndarray
    reward: float  # the context reward (sparse where the family has one)
    next_observation: np.ndarray
    terminal: bool
    done: bool  # terminal or truncated: the episode ends here


@runtime_checkable
class Policy(Protocol):
    """A (possibly stateful) policy driven by ``cocoa.rollout.rollout``."""

    def reset(self) -> None:
        """A new episode begins."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The action for ``observation`` (shape ``(obs_dim,)`` → ``(act_dim,)``, in [-1, 1])."""

    def observe(self, transition: Transition) -> None:
        """Feedback after each step (context, hidden state); may do nothing."""


@runtime_checkable
class MetaLearner(Protocol):
    """What every algorithm provides to the trainer and the evaluator.

    ``env_steps`` counts every environment step collected for meta-training (never the
    evaluator's): the x-axis of every learning curve, the same for all algorithms.
    """

    env_steps: int
    metric_names: tuple[str, ...]  # the keys train_iteration returns, in progress.csv order

    def train_iteration(self) -> dict[str, float | None]:
        """Collects data on training tasks and updates; returns scalar metrics (losses).

        ``None`` marks a metric that does not apply this iteration (an empty cell)."""

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> Policy:
        """A fresh policy to explore ``task`` (its state starts empty).

        The evaluator passes the task: an oracle learner reads its features, a learner with
        random exploration may seed it from the task so an evaluation is reproducible from a
        checkpoint; a meta-learner must not use it to adapt. ``prior_episodes``: a
        posterior-sampling learner (PEARL) draws a fresh z from the prior for that many
        episodes before it samples its posterior; others ignore it. ``run`` numbers the
        independent evaluations of one task, for a distinct random stream."""

    def adapt(self, policy: Policy, episodes: list[Episode]) -> Policy:
        """The adapted policy to evaluate, from the exploration ``policy`` and its episodes."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: networks, optimisers, buffers, RNG states, counters."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what ``state_dict`` returned."""
