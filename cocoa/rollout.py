"""Running policies for whole episodes; shared by data collection and the evaluator."""

from __future__ import annotations

import numpy as np

from cocoa.envs import Task, TaskEnv

from .types import Episode, Policy, Transition


def rollout(
    env: TaskEnv, policy: Policy, max_steps: int | None = None, seed: int | None = None
) -> Episode:
    """Runs ``policy`` on ``env`` from ``reset`` until termination or the env's horizon.

    ``seed`` (the first episode of a batch) seeds the env's reset noise at this reset; later
    episodes continue that stream. One reset per episode: a Metaworld reset costs as much as
    ~50 of its steps.

    The policy is ``reset`` first and ``observe``s every transition (with the context reward:
    the sparse one on sparse families).
    """
    horizon = min(env.horizon, max_steps or env.horizon)
    obs, _ = env.reset(seed=seed)
    policy.reset()
    obs_dim = np.asarray(obs).shape
    act_dim = env.action_space.shape
    observations = np.zeros((horizon, *obs_dim), dtype=np.float32)
    next_observations = np.zeros((horizon, *obs_dim), dtype=np.float32)
    actions = np.zeros((horizon, *act_dim), dtype=np.float32)
    rewards = np.zeros(horizon, dtype=np.float32)
    context_rewards = np.zeros(horizon, dtype=np.float32)
    terminals = np.zeros(horizon, dtype=np.float32)
    successes = np.zeros(horizon, dtype=np.float32)
    t = 0
    while t < horizon:
        action = np.asarray(policy.act(obs), dtype=np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        context_reward = float(info.get("sparse_reward", reward))
        observations[t] = obs
        actions[t] = action
        rewards[t] = reward
        context_rewards[t] = context_reward
        next_observations[t] = next_obs
        terminals[t] = float(terminated)
        successes[t] = float(info.get("success", 0.0))
        t += 1
        done = terminated or truncated or t >= horizon
        policy.observe(Transition(obs, action, context_reward, next_obs, terminated, done))
        obs = next_obs
        if done:
            break
    return Episode(
        observations[:t],
        actions[:t],
        rewards[:t],
        context_rewards[:t],
        next_observations[:t],
        terminals[:t],
        successes[:t],
    )


def collect(
    env: TaskEnv, task: Task, policy: Policy, n_episodes: int, rng: np.random.Generator
) -> list[Episode]:
    """``n_episodes`` consecutive episodes of ``policy`` on ``task``.

    The env's reset noise is seeded from ``rng`` first, so a resumed run (whose ``rng`` state
    came from a checkpoint) sees the same initial states as an uninterrupted one.
    """
    env.set_task(task)
    seed = int(rng.integers(2**31 - 1))
    return [rollout(env, policy, seed=seed if i == 0 else None) for i in range(n_episodes)]
