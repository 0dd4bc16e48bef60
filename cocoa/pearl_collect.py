"""PEARL's data collection on one training task, as a sampler job (numpy only, no torch).

One job is what PEARL does for one sampled task in an iteration: with the task's encoder
buffer just cleared, collect ``phases`` in order, each of whole episodes until its step count is
reached:

* ``prior``: z ~ N(0, I) per episode;
* ``posterior``: z ~ q(z | c) per episode, c being ``embedding_batch_size`` transitions drawn
  uniformly (with replacement) from the episodes this job has added to the encoder buffer so
  far, i.e. exactly the task's encoder buffer, which was cleared when the job began (prior
  z while it is still empty).

Each phase says whether its episodes also go to the encoder buffer. The job returns the
episodes with those flags; the learner writes them into its buffers in job order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cocoa.envs import Task, TaskEnv

from .np_nets import (
    EncoderParams,
    MlpParams,
    NumpyTanhGaussianPolicy,
    RecurrentEncoderParams,
    posterior,
)
from .rollout import rollout
from .types import Episode


@dataclass(frozen=True)
class Phase:
    """Whole episodes until ``steps`` steps, with z from the prior or the posterior."""

    steps: int
    posterior: bool
    add_to_enc: bool


@dataclass(frozen=True)
class CollectJob:
    """One task's collection; ``seed`` seeds the env's reset noise, z and the actions."""

    task: Task
    seed: int
    phases: tuple[Phase, ...]


@dataclass(frozen=True)
class Weights:
    """What a job needs of the agent: numpy copies of π and the encoder, and settings."""

    policy: MlpParams
    encoder: EncoderParams
    latent_dim: int
    embedding_batch_size: int
    use_next_obs_in_context: bool


@dataclass(frozen=True)
class Collected:
    """One collected episode and where it goes."""

    episode: Episode
    add_to_enc: bool
    posterior: bool


def context_rows(episode: Episode, use_next_obs: bool) -> np.ndarray:
    """An episode as context transitions (s, a, r[, s']): ``(T, ctx_dim)``."""
    parts = [episode.observations, episode.actions, episode.context_rewards[:, None]]
    if use_next_obs:
        parts.append(episode.next_observations)
    return np.concatenate(parts, axis=-1)


def sequence_context(episodes: list[np.ndarray], batch: int, rng: np.random.Generator):
    """A recurrent encoder's context from a task's encoder-buffer episodes ``(T_i, ctx)``:
    whole episodes drawn uniformly with replacement, concatenated in order and cut at
    ``batch`` rows, as ``MultiTaskReplayBuffer.sample_sequences`` draws them: ``(batch, ctx)``."""
    k = -(-batch // min(len(e) for e in episodes))  # enough episodes for ``batch`` rows
    pick = np.floor(rng.random(k) * len(episodes)).astype(np.int64)
    return np.concatenate([episodes[i] for i in pick])[:batch]


def collect_task(env: TaskEnv, w: Weights, job: CollectJob) -> list[Collected]:
    """Runs ``job`` on ``env`` (see the module docstring)."""
    rng = np.random.default_rng(job.seed)
    env.set_task(job.task)
    seed: int | None = int(rng.integers(2**31 - 1))  # the first reset's; later ones go on
    enc_context: list[np.ndarray] = []  # the task's encoder buffer, as rows
    out: list[Collected] = []
    for phase in job.phases:
        collected = 0
        while collected < phase.steps:
            if phase.posterior and enc_context:
                if isinstance(w.encoder, RecurrentEncoderParams):
                    context = sequence_context(enc_context, w.embedding_batch_size, rng)
                else:
                    rows = np.concatenate(enc_context)  # (n, ctx)
                    pick = np.floor(rng.random(w.embedding_batch_size) * len(rows))
                    context = rows[pick.astype(np.int64)]
                mu, var = posterior(w.encoder, context, w.latent_dim)
                z = mu + np.sqrt(var) * rng.standard_normal(w.latent_dim, dtype=np.float32)
            else:
                z = rng.standard_normal(w.latent_dim, dtype=np.float32)
            episode = rollout(env, NumpyTanhGaussianPolicy(w.policy, z, rng), seed=seed)
            seed = None
            if phase.add_to_enc:
                enc_context.append(context_rows(episode, w.use_next_obs_in_context))
            out.append(Collected(episode, phase.add_to_enc, phase.posterior))
            collected += len(episode)
    return out
