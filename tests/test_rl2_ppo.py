"""RL²-PPO: the hidden state across episodes and trials, the GRU inputs, GAE, resuming."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cocoa.baselines import rl2_ppo as R
from cocoa.baselines.common import discount_cumsum, gae
from cocoa.rollout import collect, rollout


def learner(family, tasks, seed=0) -> R.Rl2Ppo:
    cfg = dataclasses.replace(
        R.preset(family, "quick"), hidden=16, meta_batch_size=3, minibatch_trials=2, epochs=2
    )
    agent = R.Rl2Ppo(cfg, family, tasks[:5], torch.device("cpu"), seed)
    with torch.no_grad():  # weights far from zero, so the hidden state visibly matters
        for p in agent.nets.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return agent


def test_config_and_presets(family):
    cfg = R.Rl2PpoConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    for name in ("paper", "quick"):
        assert R.preset(family, name).episodes_per_trial == family.explore_episodes + 3


def test_hidden_state_persists_across_episodes_of_a_trial(family, tasks):
    agent = learner(family, tasks)
    env = family.make_env(tasks[0])
    env.reset(seed=0)
    policy = agent.exploration_policy(tasks[0])
    policy.deterministic = True
    obs0, _ = env.reset()
    first = policy.act(obs0)
    rollout(env, policy)  # one episode (its first step repeats the act above)
    policy.reset()  # the next episode starts: an episode boundary, not a trial boundary
    assert np.abs(policy.h).max() > 0, "the hidden state was cleared at the episode start"
    assert policy.prev[-1] == 1.0  # d_{t−1} marks the boundary
    assert not np.allclose(policy.act(obs0), first), "experience left no trace in the action"


def test_a_new_trial_starts_from_zero(family, tasks):
    agent = learner(family, tasks)
    obs = np.array([0.2, -0.1])
    one = agent.exploration_policy(tasks[0])
    one.deterministic = True
    first = one.act(obs)
    for _ in range(5):
        later = one.act(obs)
    assert not np.allclose(later, first)
    fresh = agent.exploration_policy(tasks[0])
    fresh.deterministic = True
    np.testing.assert_array_equal(fresh.act(obs), first)
    # sampling too: a fresh trial on the same task replays the same first action
    a, b = agent.exploration_policy(tasks[0]), agent.exploration_policy(tasks[0])
    np.testing.assert_array_equal(a.act(obs), b.act(obs))


def test_adapt_keeps_the_trial_and_switches_to_mean_actions(family, tasks):
    agent = learner(family, tasks)
    policy = agent.exploration_policy(tasks[0])
    episodes = collect(agent.env, tasks[0], policy, 1, np.random.default_rng(0))
    h = policy.h.copy()
    adapted = agent.adapt(policy, episodes)
    assert adapted is policy and adapted.deterministic
    np.testing.assert_array_equal(adapted.h, h)


def test_stepwise_actor_matches_the_sequence_forward(family, tasks):
    agent = learner(family, tasks)
    actor = R.RL2Actor(agent.nets, torch.Generator(), deterministic=True)
    episodes = collect(agent.env, tasks[1], actor, 3, np.random.default_rng(0))
    x = torch.as_tensor(R.trial_inputs(episodes))[None]  # (1, T, in): the whole trial
    with torch.no_grad():
        mean, h = agent.nets.mean(x)
    actions = np.concatenate([e.actions for e in episodes])  # the actor's mean actions
    np.testing.assert_allclose(mean[0].numpy(), actions, atol=1e-5)
    np.testing.assert_allclose(h.numpy().ravel(), actor.h, atol=1e-5)


def test_trial_inputs_shift_actions_rewards_and_episode_ends(family, tasks):
    agent = learner(family, tasks)
    actor = agent.exploration_policy(tasks[0])
    episodes = collect(agent.env, tasks[0], actor, 2, np.random.default_rng(0))
    x = R.trial_inputs(episodes)
    o, a = family.obs_dim, family.action_dim
    T = len(episodes[0])
    assert x.shape == (2 * T, o + a + 2)
    np.testing.assert_array_equal(x[0, o:], 0.0)  # trial start: nothing before
    np.testing.assert_array_equal(x[1, o : o + a], episodes[0].actions[0])
    assert x[1, o + a] == episodes[0].context_rewards[0] and x[1, -1] == 0.0
    assert x[T, -1] == 1.0  # first step of the second episode: the previous one ended
    np.testing.assert_array_equal(x[T, :o], episodes[1].observations[0])
    np.testing.assert_array_equal(x[T, o : o + a], episodes[0].actions[-1])


def test_gae_matches_a_hand_computed_case():
    rewards = np.array([1.0, 2.0, 3.0])
    values = np.array([0.5, 1.0, 1.5])
    dones = np.array([0.0, 1.0, 0.0])  # the sequence is cut after step 1
    gamma, lam, last = 0.9, 0.8, 2.0
    # δ2 = 3 + 0.9·2 − 1.5 = 3.3;  δ1 = 2 − 1 = 1 (cut);  δ0 = 1 + 0.9·1 − 0.5 = 1.4
    # A2 = 3.3;  A1 = 1.0;  A0 = 1.4 + 0.9·0.8·1.0 = 2.12
    adv = gae(rewards, values, dones, gamma, lam, last_values=last)
    np.testing.assert_allclose(adv, [2.12, 1.0, 3.3], rtol=1e-6)
    batched = gae(np.stack([rewards] * 2), np.stack([values] * 2), np.stack([dones] * 2), gamma,
                  lam, last_values=np.array([last, last]))  # fmt: skip
    np.testing.assert_allclose(batched, [[2.12, 1.0, 3.3]] * 2, rtol=1e-6)
    # λ = 1 and V = 0: the discounted return
    np.testing.assert_allclose(
        gae(rewards, np.zeros(3), np.zeros(3), 0.9, 1.0), discount_cumsum(rewards, 0.9)
    )


def test_iteration_counts_steps_and_reports_its_metrics(family, tasks):
    agent = learner(family, tasks)
    metrics = agent.train_iteration()
    assert list(metrics) == list(R.Rl2Ppo.metric_names)
    assert all(np.isfinite(v) for v in metrics.values())
    cfg = agent.cfg
    assert agent.env_steps == cfg.meta_batch_size * cfg.episodes_per_trial * family.horizon


def test_resume_continues_identically(family, tasks, check_resume):
    check_resume(lambda seed: learner(family, tasks, seed=seed), lambda l: [l.nets])


def test_train_iteration_is_collect_data_then_update_on(family, tasks):
    a, b = learner(family, tasks, seed=4), learner(family, tasks, seed=4)
    expected = a.train_iteration()
    data = b.collect_data()
    steps = b.env_steps
    metrics = b.update_on(data)
    assert b.env_steps == steps  # the update collects nothing
    assert data.batch.inputs.shape[0] == b.cfg.meta_batch_size
    train_return = float(np.mean([e.rewards.sum() for t in data.trials for e in t]))
    assert {"train_return": train_return} | metrics == expected
    for p, q in zip(a.nets.parameters(), b.nets.parameters()):
        assert torch.equal(p, q)
