"""Oracle-SAC: the oracle input, the Bellman target, data accounting and resuming."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from cocoa.baselines import oracle_sac as S


def learner(family, tasks, seed=0) -> S.OracleSac:
    cfg = dataclasses.replace(
        S.preset(family, "quick"),
        hidden=(16, 16),
        batch_size=8,
        meta_batch=3,
        initial_steps=20,
        num_tasks_sample=2,
        steps_per_task=20,
        num_train_steps=5,
    )
    return S.OracleSac(cfg, family, tasks[:4], torch.device("cpu"), seed)


def test_config_and_presets(family):
    cfg = S.OracleSacConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert (cfg.gamma, cfg.tau, cfg.lr, cfg.batch_size) == (0.99, 0.005, 3e-4, 256)
    for name in ("paper", "quick"):
        assert isinstance(S.preset(family, name), S.OracleSacConfig)


def test_the_policy_sees_the_oracle_features(family, tasks):
    agent = learner(family, tasks)
    with torch.no_grad():  # a policy whose mean depends visibly on its inputs
        for p in agent.policy.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    obs = np.array([0.1, 0.2], dtype=np.float32)
    actions = []
    for task in tasks[:2]:
        assert not np.allclose(tasks[0].oracle, tasks[1].oracle)
        policy = agent.adapt(agent.exploration_policy(task), [])
        assert policy.deterministic
        actions.append(policy.act(obs))
    assert not np.allclose(actions[0], actions[1]), "changing the oracle left the action"
    with pytest.raises(ValueError, match="task"):
        agent.exploration_policy()


def test_q_target_is_the_sac_target(family, tasks):
    agent = learner(family, tasks)
    with torch.no_grad():  # make the twin critics disagree, so the min matters
        for p in agent.q_target.q2.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    g = torch.Generator().manual_seed(2)
    in_dim = family.obs_dim + family.oracle_dim
    next_x = torch.randn(2, 3, in_dim, generator=g)  # (task, batch, ·)
    rewards = torch.randn(2, 3, 1, generator=g)
    terminals = torch.tensor([[[0.0], [1.0], [0.0]], [[0.0], [0.0], [1.0]]])
    alpha, gamma = torch.tensor([0.3]), 0.9

    y = S.sac_target(rewards, terminals, next_x, agent.policy, agent.q_target, alpha, gamma,
                     torch.Generator().manual_seed(7))  # fmt: skip

    # by hand, row by row, with the same draw of a' ~ π(· | s')
    sample = agent.policy(next_x, generator=torch.Generator().manual_seed(7))
    for t in range(2):
        for b in range(3):
            x, a = next_x[t, b], sample.action[t, b]
            xa = torch.cat([x, a])
            q1 = agent.q_target.q1(xa).item()
            q2 = agent.q_target.q2(xa).item()
            soft = min(q1, q2) - 0.3 * sample.log_pi[t, b].item()
            expected = rewards[t, b].item() + gamma * (1 - terminals[t, b].item()) * soft
            assert math.isclose(y[t, b].item(), expected, rel_tol=1e-5, abs_tol=1e-6)
            if terminals[t, b]:
                assert math.isclose(y[t, b].item(), rewards[t, b].item(), rel_tol=1e-6)
    assert not torch.allclose(*agent.q_target(next_x, sample.action))


def test_iteration_fills_buffers_and_counts_steps(family, tasks):
    agent = learner(family, tasks)
    metrics = agent.train_iteration()
    assert list(metrics) == list(S.OracleSac.metric_names)
    assert all(np.isfinite(v) for v in metrics.values())
    horizon, cfg = family.horizon, agent.cfg
    initial = len(agent.train_tasks) * math.ceil(cfg.initial_steps / horizon) * horizon
    fresh = cfg.num_tasks_sample * math.ceil(cfg.steps_per_task / horizon) * horizon
    assert agent.env_steps == initial + fresh
    assert all(agent.buffer.size(i) >= cfg.initial_steps for i in range(len(agent.train_tasks)))
    x, a, r, next_x, d = agent._batch(np.array([0, 2, 3]))
    assert x.shape == (3, cfg.batch_size, family.obs_dim + family.oracle_dim)
    # the oracle columns are each task's features
    np.testing.assert_allclose(x[1, :, family.obs_dim :].numpy(), np.tile(tasks[2].oracle, (8, 1)))
    assert r.shape == d.shape == (3, cfg.batch_size, 1)


def test_resume_continues_identically(family, tasks, check_resume):
    a, b = check_resume(lambda seed: learner(family, tasks, seed=seed), lambda l: [l.q])
    assert torch.equal(a.log_alpha, b.log_alpha)


def test_gradient_steps_average_the_updates(family, tasks, checkpoint_round_trip):
    a = learner(family, tasks, seed=5)
    a.train_iteration()  # fills the buffers
    b = learner(family, tasks, seed=99)
    b.load_state_dict(checkpoint_round_trip(a.state_dict()))
    assert a.gradient_steps(0) == {}
    averaged = a.gradient_steps(3)
    n, k = len(b.train_tasks), b.cfg.meta_batch
    totals: dict[str, float] = {}
    for _ in range(3):
        for name, v in b.update(b.rng.choice(n, size=k, replace=k > n)).items():
            assert v.device == b.device  # metrics stay on the device until read
            totals[name] = totals.get(name, 0.0) + v
    assert averaged == {name: float(v) / 3 for name, v in totals.items()}
    assert list(averaged) == list(S.OracleSac.metric_names[1:])


def test_standardised_oracle_features_are_seen_in_training_and_at_meta_test():
    """With ``standardise_oracle`` the training tasks' features have mean 0 and std 1 per
    dimension (a constant one is only centred), in the update's batch and in the meta-test
    policy alike; without it, the raw features."""
    from cocoa.envs import get_family
    from cocoa.task_samplers import TaskSampler

    family = get_family("reach")
    tasks = TaskSampler(family, 0).train_tasks()
    raw = np.stack([t.oracle for t in tasks]).astype(np.float64)  # (50, 6)
    constant = raw.std(axis=0) < 1e-8
    assert constant.any() and not constant.all()  # the puck's height is fixed on reach
    cfg = dataclasses.replace(S.preset(family, "quick"), standardise_oracle=True)
    agent = S.OracleSac(cfg, family, tasks, torch.device("cpu"), 0)
    seen = agent.oracles.numpy().astype(np.float64)  # (50, 6)
    np.testing.assert_allclose(seen.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(seen.std(axis=0)[~constant], 1, rtol=1e-5)
    np.testing.assert_allclose(seen[:, constant], 0, atol=1e-6)
    test_task = TaskSampler(family, 0).test_tasks()[3]
    policy = agent.exploration_policy(test_task)
    expected = (test_task.oracle - raw.mean(axis=0)) / np.where(constant, 1, raw.std(axis=0))
    np.testing.assert_allclose(policy.oracle.numpy(), expected, rtol=1e-5, atol=1e-6)
    plain = S.OracleSac(S.preset(family, "quick"), family, tasks, torch.device("cpu"), 0)
    np.testing.assert_array_equal(plain.oracles.numpy(), raw.astype(np.float32))
