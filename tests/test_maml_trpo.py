"""MAML-TRPO: the inner step, the second-order outer gradient, CG, the line search, the baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cocoa.baselines import maml_trpo as M
from cocoa.baselines.common import LinearFeatureBaseline
from cocoa.rollout import collect


def tiny(family) -> M.MamlTrpoConfig:
    return dataclasses.replace(
        M.preset(family, "quick"), hidden=(16, 16), meta_batch_size=3, outer_episodes=2
    )


def learner(family, tasks, seed=0) -> M.MamlTrpo:
    return M.MamlTrpo(tiny(family), family, tasks[:6], torch.device("cpu"), seed)


def random_batch(family, n_tasks, n, seed) -> M.TaskBatch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_tasks, n, family.obs_dim, generator=g)
    actions = torch.randn(n_tasks, n, family.action_dim, generator=g)
    adv = torch.randn(n_tasks, n, generator=g)
    return M.TaskBatch(obs, actions, adv, torch.ones(n_tasks, n))


def test_config_is_frozen_with_defaults(family):
    cfg = M.MamlTrpoConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.inner_lr = 1.0  # type: ignore[misc]
    for name in ("paper", "quick"):
        assert isinstance(M.preset(family, name), M.MamlTrpoConfig)
    assert M.preset(family, "quick").inner_episodes == family.explore_episodes
    with pytest.raises(ValueError):
        M.preset(family, "huge")


def test_adapt_changes_adapted_policy_and_leaves_meta_policy(family, tasks):
    agent = learner(family, tasks)
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    explorer = agent.exploration_policy(tasks[0])
    episodes = collect(agent.env, tasks[0], explorer, 2, np.random.default_rng(0))
    adapted = agent.adapt(explorer, episodes)
    after = agent.policy.state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), f"meta-parameter {k} changed"
    meta_w = explorer.layers[0][0]
    assert not np.allclose(adapted.layers[0][0], meta_w), "the inner step did not move θ'"
    assert adapted.deterministic and not explorer.deterministic
    obs = np.array([0.3, -0.4], dtype=np.float32)
    assert np.array_equal(adapted.act(obs), adapted.act(obs))  # mean actions


def test_batched_inner_update_equals_per_task_updates(family, tasks):
    agent = learner(family, tasks)
    batch = random_batch(family, 3, 7, seed=1)
    together = agent.inner_update(agent.meta_params(), batch, create_graph=False)
    for i in range(3):
        alone = agent.inner_update(
            agent.meta_params(), M.TaskBatch(*(f[i : i + 1] for f in batch)), False
        )
        for k in together:
            torch.testing.assert_close(together[k][i], alone[k][0])


def test_outer_gradient_flows_through_the_inner_step(family, tasks):
    agent = learner(family, tasks)
    pre, post = random_batch(family, 2, 9, seed=2), random_batch(family, 2, 9, seed=3)
    params = agent.meta_params()

    def outer_grad(create_graph: bool) -> torch.Tensor:
        # create_graph=False keeps ∇L_inner out of the graph: the first-order approximation
        mean, log_std = agent.post_adaptation(params, pre, post, create_graph)
        log_pi = M.gaussian_log_prob(mean, log_std, post.actions)
        loss = -M.masked_mean(log_pi * post.advantages, post.mask)
        grads = torch.autograd.grad(loss, list(params.values()))
        return torch.cat([g.reshape(-1) for g in grads])

    full, first_order = outer_grad(True), outer_grad(False)
    assert full.abs().sum() > 0
    assert not torch.allclose(full, first_order, atol=1e-6), "no second-order term"


def test_conjugate_gradient_solves_an_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    a = m @ m.T + np.eye(6)
    b = rng.normal(size=6)
    a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
    x = M.conjugate_gradient(lambda v: a_t @ v, b_t, iters=6)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


def test_line_search_respects_the_kl_bound():
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    direction = torch.tensor([0.6, 0.8], dtype=torch.float64)
    max_kl = 0.01

    def evaluate(theta):  # loss falls along −step; KL grows quadratically with the step
        delta = theta - theta0
        return float(delta @ direction), float(0.5 * delta @ delta)

    full_step = 10.0 * direction  # its KL is 50, far above the bound
    assert evaluate(theta0 - full_step)[1] > max_kl
    theta, loss, kl, accepted = M.backtracking_line_search(
        evaluate, theta0, full_step, 0.0, max_kl, ratio=0.5, max_backtracks=15
    )
    assert accepted and kl <= max_kl and loss < 0.0
    # the largest step within the bound: the previous (twice longer) one violates it
    assert evaluate(theta0 - 2 * (theta0 - theta))[1] > max_kl

    uphill = lambda theta: (-evaluate(theta)[0], evaluate(theta)[1])  # noqa: E731
    theta, _, _, accepted = M.backtracking_line_search(
        uphill, theta0, full_step, 0.0, max_kl, ratio=0.5, max_backtracks=15
    )
    assert not accepted and torch.equal(theta, theta0)


def test_trpo_step_keeps_the_kl_bound(family, tasks):
    agent = learner(family, tasks)
    metrics = agent.train_iteration()
    assert set(metrics) == set(M.MamlTrpo.metric_names)
    if metrics["step_accepted"]:
        assert metrics["kl"] <= agent.cfg.max_kl
        assert metrics["surrogate_after"] < metrics["surrogate_before"]
    cfg = agent.cfg
    assert (
        agent.env_steps
        == cfg.meta_batch_size * (cfg.inner_episodes + cfg.outer_episodes) * family.horizon
    )


def test_linear_baseline_fits_a_linear_target_exactly():
    rng = np.random.default_rng(0)
    episodes = [rng.uniform(-2, 2, size=(15, 3)) for _ in range(4)]
    w = rng.normal(size=2 * 3 + 4)
    returns = [LinearFeatureBaseline.features(o) @ w for o in episodes]
    baseline = LinearFeatureBaseline(reg_coeff=1e-10)
    baseline.fit(episodes, returns)
    for o, r in zip(episodes, returns):
        np.testing.assert_allclose(baseline.predict(o), r, atol=1e-4)
    assert LinearFeatureBaseline().predict(episodes[0]).shape == (15,)


def test_resume_continues_identically(family, tasks, check_resume):
    check_resume(lambda seed: learner(family, tasks, seed=seed), lambda l: [l.policy])


def test_train_iteration_is_collect_data_then_update_on(family, tasks):
    a, b = learner(family, tasks, seed=4), learner(family, tasks, seed=4)
    expected = a.train_iteration()
    data = b.collect_data()
    steps = b.env_steps
    metrics = b.update_on(data)
    assert b.env_steps == steps  # the update collects nothing
    returns = {
        "pre_adapt_return": float(np.mean([e.rewards.sum() for t in data.pre_episodes for e in t])),
        "post_adapt_return": float(
            np.mean([e.rewards.sum() for t in data.post_episodes for e in t])
        ),
    }
    assert returns | metrics == expected
    assert list(returns | metrics) == list(M.MamlTrpo.metric_names)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(p, q)
