"""The sampler and numpy inference: the same data on any number of workers, numpy networks
equal to their torch originals, PEARL's collection semantics."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from cocoa.context import ContextEncoder
from cocoa.envs import get_family
from cocoa.nets import TanhGaussianPolicy
from cocoa.np_nets import NumpyTanhGaussianPolicy, mlp_params, posterior
from cocoa.pearl import Pearl, preset
from cocoa.pearl_collect import CollectJob, Phase, Weights, collect_task, sequence_context
from cocoa.sampler import Sampler
from cocoa.task_samplers import get_sampler


def episode_arrays(episodes):
    return [
        np.concatenate([e.observations.ravel(), e.actions.ravel(), e.rewards]) for e in episodes
    ]


def test_numpy_policy_matches_torch_policy():
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(6 + 3, 2, [32, 32])
    obs = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    z = np.array([0.3, -1.2, 0.5], dtype=np.float32)
    x = torch.as_tensor(np.concatenate([obs, np.tile(z, (10, 1))], 1))
    with torch.no_grad():
        out = policy(x, deterministic=True)
    np_policy = NumpyTanhGaussianPolicy(
        mlp_params(policy.trunk.state_dict()), z, np.random.default_rng(0), deterministic=True
    )
    for i in range(10):
        np.testing.assert_allclose(np_policy.act(obs[i]), out.action[i].numpy(), atol=1e-5)


def test_numpy_policy_samples_with_the_policy_std():
    torch.manual_seed(1)
    policy = TanhGaussianPolicy(4 + 2, 1, [16])
    params = mlp_params(policy.trunk.state_dict())
    z, obs = np.zeros(2, np.float32), np.ones(4, np.float32)
    with torch.no_grad():
        out = policy(torch.as_tensor(np.concatenate([obs, z]))[None], deterministic=True)
    np_policy = NumpyTanhGaussianPolicy(params, z, np.random.default_rng(0))
    pre_tanh = np.arctanh(np.array([np_policy.act(obs)[0] for _ in range(20000)]))
    assert pre_tanh.mean() == pytest.approx(float(out.mean[0, 0]), abs=0.03)
    assert pre_tanh.std() == pytest.approx(float(out.log_std[0, 0].exp()), rel=0.03)


@pytest.mark.parametrize(
    "attention_layers, recurrent", [(0, False), (1, False), (2, False), (0, True)]
)
def test_numpy_posterior_matches_the_torch_encoder(attention_layers, recurrent):
    torch.manual_seed(0)
    encoder = ContextEncoder(7, 3, [32, 32], attention_layers, recurrent)
    with torch.no_grad():  # every weight off its init, so no block is close to the identity
        for p in encoder.parameters():
            p.add_(0.2 * torch.randn_like(p))
    context = np.random.default_rng(1).normal(size=(25, 7)).astype(np.float32)
    with torch.no_grad():
        mu, var = encoder(torch.as_tensor(context)[None])
    np_mu, np_var = posterior(encoder.numpy_params(), context, 3)
    np.testing.assert_allclose(np_mu, mu[0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np_var, var[0].numpy(), rtol=1e-4, atol=1e-9)


def tiny_weights(seed=0, latent=3):
    family = get_family("point-robot")
    torch.manual_seed(seed)
    policy = TanhGaussianPolicy(family.obs_dim + latent, family.action_dim, [16])
    encoder = ContextEncoder(family.obs_dim + family.action_dim + 1, latent, [16])
    return Weights(
        mlp_params(policy.trunk.state_dict()),
        mlp_params(encoder.net.state_dict()),
        latent,
        8,
        False,
    )


def test_collect_task_runs_phases_in_whole_episodes_and_flags_them():
    family = get_family("point-robot")  # 20-step episodes
    task = get_sampler("point-robot").train_tasks()[0]
    phases = (Phase(30, False, True), Phase(20, True, True), Phase(1, True, False))
    out = collect_task(family.make_env(), tiny_weights(), CollectJob(task, 7, phases))
    # 30 steps need two whole episodes, then one, then one
    assert [len(c.episode) for c in out] == [20, 20, 20, 20]
    assert [(c.add_to_enc, c.posterior) for c in out] == [
        (True, False),
        (True, False),
        (True, True),
        (False, True),
    ]


def test_collect_task_is_a_function_of_its_seed():
    family = get_family("point-robot")
    task = get_sampler("point-robot").train_tasks()[0]
    phases = (Phase(40, False, True), Phase(40, True, False))
    w = tiny_weights()
    a = collect_task(family.make_env(), w, CollectJob(task, 3, phases))
    b = collect_task(family.make_env(), w, CollectJob(task, 3, phases))
    c = collect_task(family.make_env(), w, CollectJob(task, 4, phases))
    for x, y in zip(episode_arrays(c.episode for c in a), episode_arrays(c.episode for c in b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0].episode.actions, c[0].episode.actions)


def test_workers_collect_exactly_what_the_in_process_path_collects():
    family = get_family("point-robot")
    tasks = get_sampler("point-robot").train_tasks()[:5]
    phases = (Phase(20, False, True), Phase(20, True, False))
    jobs = [CollectJob(t, 100 + i, phases) for i, t in enumerate(tasks)]
    w = tiny_weights()
    local = Sampler(family, workers=1).run(collect_task, w, jobs)
    sampler = Sampler(family, workers=2)
    try:
        remote = sampler.run(collect_task, w, jobs)
        again = sampler.run(collect_task, w, jobs[:1])  # the workers are reused
    finally:
        sampler.close()
    assert len(remote) == len(local) == 5
    for lo, re in zip(local, remote):
        for x, y in zip(
            episode_arrays(c.episode for c in lo), episode_arrays(c.episode for c in re)
        ):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(again[0][0].episode.actions, local[0][0].episode.actions)


def _fail(env, shared, job):
    raise ValueError(f"bad job {job}")


def test_a_failing_job_raises_in_the_parent_with_the_workers_traceback():
    sampler = Sampler(get_family("point-robot"), workers=2)
    try:
        with pytest.raises(RuntimeError, match="bad job 3"):
            sampler.run(_fail, None, [3])
    finally:
        sampler.close()


def test_pearl_with_two_workers_learns_from_identical_data(tasks):
    family = get_family("point-robot")
    cfg = replace(
        preset(family, "quick"),
        net_size=16,
        n_layers=2,
        encoder_hidden=(16,),
        batch_size=8,
        meta_batch=4,
        num_initial_steps=20,
        num_tasks_sample=3,
        num_steps_prior=20,
        num_extra_rl_steps_posterior=20,
        num_train_steps_per_itr=2,
        contrastive_batch=4,
        crop_window=5,
    )
    a = Pearl(cfg, family, tasks[:6], torch.device("cpu"), seed=1)
    b = Pearl(cfg, family, tasks[:6], torch.device("cpu"), seed=1)
    b.set_workers(2)
    try:
        for _ in range(2):
            metrics_a, metrics_b = a.train_iteration(), b.train_iteration()
            assert metrics_a == metrics_b
    finally:
        b.sampler.close()
    assert a.env_steps == b.env_steps == 6 * 20 + 2 * 3 * 40
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(a.rl_buffer.data[key], b.rl_buffer.data[key])
        np.testing.assert_array_equal(a.enc_buffer.data[key], b.enc_buffer.data[key])


def test_collection_context_of_a_recurrent_encoder_is_whole_episodes_in_order():
    episodes = [np.full((n, 2), tag, np.float32) for tag, n in [(0, 4), (1, 6), (2, 5)]]
    episodes = [np.column_stack([e[:, 0], np.arange(len(e))]) for e in episodes]
    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(30):
        ctx = sequence_context(episodes, 9, rng)
        assert ctx.shape == (9, 2)
        # runs of one tag: steps 0, 1, ... (whole episodes; the last one cut at 9 rows)
        starts = np.flatnonzero(np.diff(ctx[:, 1], prepend=-2) != 1)
        for a, b in zip(starts, [*starts[1:], 9]):
            assert len(set(ctx[a:b, 0])) == 1 and ctx[a, 1] == 0
            if b < 9:
                assert b - a == len(episodes[int(ctx[a, 0])])
            drawn.add(int(ctx[a, 0]))
    assert drawn == {0, 1, 2}
