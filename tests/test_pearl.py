"""PEARL/CoCOA update: gradient routing, EMA key encoder, batched shapes, presets."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from cocoa.algorithms import get_algorithm
from cocoa.envs import get_family
from cocoa.pearl import Pearl, preset
from cocoa.task_samplers import get_sampler

TINY = dict(
    net_size=16,
    n_layers=2,
    encoder_hidden=(16,),
    batch_size=8,
    meta_batch=4,
    embedding_batch_size=6,
    num_initial_steps=20,
    num_tasks_sample=2,
    num_steps_prior=20,
    num_extra_rl_steps_posterior=20,
    num_train_steps_per_itr=3,
    contrastive_batch=6,
    crop_window=5,
)


def make_agent(contrastive=True, similarity="bhattacharyya", seed=0, **overrides):
    family = get_family("point-robot")
    cfg = replace(
        preset(family, "quick", contrastive=contrastive),
        **{**TINY, "similarity": similarity, **overrides},
    )
    tasks = get_sampler("point-robot").train_tasks()[:6]
    return Pearl(cfg, family, tasks, torch.device("cpu"), seed)


@pytest.fixture(scope="module")
def trained_agent():
    agent = make_agent()
    agent.train_iteration()
    return agent


def grads_of(module):
    return [p.grad for p in module.parameters()]


def test_first_iteration_fills_both_buffers_and_counts_steps(trained_agent):
    agent = trained_agent
    # initial 20 steps on all 6 tasks, then 2 tasks × (20 prior + 20 posterior)
    assert agent.env_steps == 6 * 20 + 2 * 40
    assert all(agent.rl_buffer.size(t) >= 20 for t in range(6))
    assert sum(agent.rl_buffer.size(t) for t in range(6)) == agent.env_steps


def test_encoder_gets_no_gradient_from_policy_and_value_losses(trained_agent, monkeypatch):
    agent = trained_agent
    calls = []
    real_backward = torch.Tensor.backward

    def spy(self, *args, **kwargs):
        agent.encoder.zero_grad(set_to_none=True)
        real_backward(self, *args, **kwargs)
        calls.append([g is not None and g.abs().sum().item() > 0 for g in grads_of(agent.encoder)])

    monkeypatch.setattr(torch.Tensor, "backward", spy)
    agent.update(np.array([0, 1, 2, 3]))
    assert len(calls) == 2
    assert all(calls[0]), "the critic + KL + contrastive loss must train the encoder"
    assert not any(calls[1]), "the policy and value losses must not reach the encoder"


def test_key_encoder_gets_no_gradient_and_follows_ema(trained_agent):
    agent = trained_agent
    m = agent.cfg.key_momentum
    before_k = [p.detach().clone() for p in agent.key_encoder.parameters()]
    agent.update(np.array([0, 1, 2, 3]))
    for p in agent.key_encoder.parameters():
        assert not p.requires_grad and p.grad is None
    # after the step: θ_k = m θ_k_before + (1 − m) θ_q_after
    for k_new, k_old, q in zip(
        agent.key_encoder.parameters(), before_k, agent.encoder.parameters()
    ):
        torch.testing.assert_close(k_new, m * k_old + (1 - m) * q.detach())


def test_pearl_has_no_contrastive_term_and_does_not_move_key_encoder():
    agent = make_agent(contrastive=False)
    agent.train_iteration()
    before = [p.clone() for p in agent.key_encoder.parameters()]
    metrics = agent.update(np.array([0, 1, 2, 3]))
    assert metrics["contrastive_loss"].item() == 0.0
    for a, b in zip(before, agent.key_encoder.parameters()):
        torch.testing.assert_close(a, b)


def test_contrastive_weight_changes_the_encoder_update():
    """Same seed and data: CoCOA's encoder step differs from PEARL's only via the InfoNCE term."""
    a, b = make_agent(contrastive=True), make_agent(contrastive=False)
    a.train_iteration()
    b.train_iteration()
    diff = sum(
        (p - q).abs().sum().item() for p, q in zip(a.encoder.parameters(), b.encoder.parameters())
    )
    assert diff > 0


def test_bilinear_similarity_is_trained():
    agent = make_agent(similarity="bilinear")
    agent.train_iteration()
    W = agent.similarity.W.detach().clone()
    agent.update(np.array([0, 1, 2, 3]))
    assert not torch.equal(W, agent.similarity.W.detach())


def test_explore_adapt_policies_act_in_bounds(trained_agent):
    agent = trained_agent
    env = get_family("point-robot").make_env(get_sampler("point-robot").test_tasks()[0])
    from cocoa.rollout import rollout

    policy = agent.exploration_policy()
    eps = [rollout(env, policy) for _ in range(2)]
    assert len(policy.context) == 40 and policy.context[0].shape == (2 + 2 + 1,)
    adapted = agent.adapt(policy, eps)
    ep = rollout(env, adapted)
    assert len(ep) == 20 and np.all(np.abs(ep.actions) <= 1)


def test_state_dict_round_trip_reproduces_next_iteration(checkpoint_round_trip):
    a = make_agent(seed=3)
    a.train_iteration()
    state = checkpoint_round_trip(a.state_dict())
    m1 = a.train_iteration()
    b = make_agent(seed=99)
    b.load_state_dict(state)
    m2 = b.train_iteration()
    assert m1 == m2
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_presets():
    fam = get_family("point-robot")
    assert get_algorithm("pearl").preset(fam, "paper").contrastive_weight == 0
    paper = get_algorithm("cocoa").preset(fam, "paper")
    assert paper.contrastive_weight > 0 and paper.meta_batch == 16
    assert paper.num_train_steps_per_itr == 1000 and paper.embedding_batch_size == 64
    assert paper.crop_window <= fam.horizon


def test_sparse_quick_preset_keeps_posterior_data_for_the_encoder():
    sparse = get_algorithm("pearl").preset(get_family("sparse-point-robot"), "quick")
    paper = get_algorithm("pearl").preset(get_family("sparse-point-robot"), "paper")
    assert (paper.num_steps_prior, paper.num_steps_posterior) == (100, 900)  # PEARL's config
    assert sparse.num_steps_posterior > sparse.num_steps_prior > 0
    assert sparse.num_extra_rl_steps_posterior == 0
    # the context batch covers the whole encoder buffer of one collection
    assert sparse.embedding_batch_size == sparse.num_steps_prior + sparse.num_steps_posterior
    assert sparse.kl_lambda == paper.kl_lambda == 1.0
    dense = get_algorithm("pearl").preset(get_family("point-robot"), "quick")
    assert dense.num_steps_posterior == 0 and dense.num_extra_rl_steps_posterior > 0


def resumes_and_trains_every_encoder_weight(make, check_resume):
    """A learner from ``make(seed)`` resumes bit for bit (conftest's ``check_resume``), and one
    more iteration moves every weight of its encoder; returns it and the encoder's keys."""
    a, _ = check_resume(make, lambda agent: (agent.encoder, agent.policy, agent.qf1))
    before = {k: v.clone() for k, v in a.encoder.state_dict().items()}
    a.train_iteration()
    after = a.encoder.state_dict()
    assert {k for k in before if not torch.equal(before[k], after[k])} == set(before)
    return a, set(before)


def update_contexts(agent, monkeypatch):
    """The contexts the encoder's ``factors`` receives during one update of ``agent`` on its
    first ``meta_batch`` tasks, in call order (PEARL's context first, then any objective's)."""
    seen = []
    factors = agent.encoder.factors
    monkeypatch.setattr(agent.encoder, "factors", lambda c: seen.append(c) or factors(c))
    agent.update(np.arange(agent.cfg.meta_batch))
    return seen


@pytest.mark.parametrize("contrastive", [False, True])
def test_attention_encoder_trains_and_resumes_exactly(contrastive, check_resume):
    """With self-attention over the context, every encoder weight (the blocks included)
    learns, and a resumed learner repeats the next iteration bit for bit."""

    def make(seed):
        return make_agent(contrastive=contrastive, seed=seed, encoder_attention_layers=1)

    _, keys = resumes_and_trains_every_encoder_weight(make, check_resume)
    assert any(k.startswith("blocks.0.qkv") for k in keys)


@pytest.mark.parametrize("contrastive", [False, True])
def test_recurrent_encoder_trains_on_ordered_episodes_and_resumes_exactly(
    contrastive, check_resume, monkeypatch
):
    """PEARL's recurrent option: every encoder weight (the LSTM's included) learns, a resumed
    learner repeats the next iteration bit for bit, and the update hands the encoder whole
    encoder-buffer episodes in time order."""

    def make(seed):
        return make_agent(
            contrastive=contrastive,
            seed=seed,
            encoder_recurrent=True,
            use_next_obs_in_context=True,
            embedding_batch_size=30,
        )

    a, keys = resumes_and_trains_every_encoder_weight(make, check_resume)
    assert any(k.startswith("lstm.") for k in keys)
    context = update_contexts(a, monkeypatch)[0]  # (T, C, ctx): one sequence per task
    assert context.shape == (a.cfg.meta_batch, 30, a.context_dim)
    # (s, a, r, s'): inside an episode a row's s' is the next row's s. The encoder buffer holds
    # one 20-step episode per task, so 30 rows are that episode twice, in order.
    obs, next_obs = context[..., :2], context[..., 5:7]
    chained = (next_obs[:, :-1] == obs[:, 1:]).all(-1)  # (T, 29)
    assert chained[:, :19].all() and chained[:, 20:].all()
    assert not chained[:, 19].any()  # a new episode begins at its start
    torch.testing.assert_close(context[:, 20:], context[:, :10])


@pytest.mark.parametrize("keep", [False, True])
def test_kept_encoder_buffer_and_episode_contexts(keep, monkeypatch):
    """PEARL clears a sampled task's encoder buffer before collecting for it;
    ``keep_encoder_buffer`` keeps every episode. ``episode_contexts`` hands the update whole
    encoder-buffer episodes in time order, as the recurrent encoder's contexts are drawn."""
    a = make_agent(
        contrastive=False,
        keep_encoder_buffer=keep,
        episode_contexts=True,
        use_next_obs_in_context=True,
        embedding_batch_size=20,
    )
    jobs = []
    collect = a._collect
    monkeypatch.setattr(a, "_collect", lambda j, clear_enc: jobs.append(j) or collect(j, clear_enc))
    for _ in range(2):
        a.train_iteration()
    # prior collections per task after the initial one (jobs[0]: every task's initial steps)
    visits = np.bincount([task for j in jobs[1:] for task, _ in j], minlength=6)
    sizes = np.array([a.enc_buffer.size(t) for t in range(6)])
    # 20 initial steps per task, then 20 prior steps per visit: kept, or only the last visit's
    expected = 20 + 20 * visits if keep else np.full(6, 20)
    assert visits.sum() == 4
    np.testing.assert_array_equal(sizes, expected)
    context = update_contexts(a, monkeypatch)[0]  # (T, 20, ctx): one whole episode per task
    obs, next_obs = context[..., :2], context[..., 5:7]
    assert (next_obs[:, :-1] == obs[:, 1:]).all()


def test_recurrent_encoder_refuses_what_it_cannot_do():
    family = get_family("point-robot")
    cfg = preset(family, "quick")
    with pytest.raises(ValueError, match="exclude each other"):
        replace(cfg, encoder_recurrent=True, encoder_attention_layers=1)
    with pytest.raises(ValueError, match="not 'masked'"):
        replace(cfg, encoder_recurrent=True, objective="masked")
    replace(cfg, encoder_recurrent=True, objective="masked", contrastive_weight=0.0)  # PEARL


def test_negative_attention_layers_are_refused():
    family = get_family("point-robot")
    with pytest.raises(ValueError, match="encoder_attention_layers must be 0 or more, got -1"):
        replace(preset(family, "quick"), encoder_attention_layers=-1)


def test_update_encodes_each_context_as_its_own_set_with_attention(monkeypatch):
    """PEARL's per-transition encoder may take every context's rows in one flat pass; with
    attention, the update must hand each context (PEARL's, and each objective view) over as
    its own set, or contexts of different tasks would attend to each other."""
    agent = make_agent(contrastive=True, encoder_attention_layers=1)
    agent.train_iteration()
    shapes = [c.shape for c in update_contexts(agent, monkeypatch)]
    C, n = agent.cfg.embedding_batch_size, agent.cfg.crop_window
    assert shapes == [
        (agent.cfg.meta_batch, C, agent.context_dim),
        (shapes[1][0], n, agent.context_dim),
    ]


def test_reward_decoder_trains_the_encoder_and_resumes_exactly(check_resume):
    """``reward_decoder_weight > 0`` adds a reward decoder built after every other network (so
    they start as without it) whose loss reaches the encoder; it fits the scaled rewards of a
    fixed batch, and a resumed learner repeats the next iteration bit for bit."""
    plain = make_agent(contrastive=False)
    a = make_agent(contrastive=False, reward_decoder_weight=1.0)
    assert plain.decoder is None and "decoder_loss" not in plain.metric_names
    for name, module in plain._modules().items():
        if not isinstance(module, torch.nn.Module):  # the optimisers hold no weights yet
            continue
        for (k, va), vb in zip(
            module.state_dict().items(), a._modules()[name].state_dict().values()
        ):
            assert torch.equal(va, vb), (name, k)
    a.train_iteration()

    # the same step with the decoder's weight set to 0: the encoder's gradient differs
    b = copy.deepcopy(a)
    b.cfg = replace(b.cfg, reward_decoder_weight=0.0)
    tasks = np.arange(a.cfg.meta_batch)
    metrics = a.update(tasks)
    b.update(tasks)
    assert metrics["decoder_loss"] > 0
    assert all(g is not None for g in grads_of(a.decoder))
    diff = sum(
        (p.grad - q.grad).abs().sum()
        for p, q in zip(a.encoder.parameters(), b.encoder.parameters())
    )
    assert diff > 0

    # the decoder fits the scaled rewards: its loss on one repeated meta-batch falls tenfold
    losses = [a.update(tasks)["decoder_loss"].item() for _ in range(400)]
    assert np.mean(losses[-20:]) < 0.1 * np.mean(losses[:5])

    def make(seed):
        return make_agent(contrastive=False, seed=seed, reward_decoder_weight=1.0)

    r, _ = check_resume(make, lambda agent: (agent.encoder, agent.decoder, agent.qf1))
    assert "decoder_loss" in r.metric_names


def test_contexts_per_task_give_each_part_of_a_tasks_batch_its_own_z(monkeypatch, check_resume):
    """With ``contexts_per_task = K`` the update infers K posteriors per task from K contexts
    of that task, and the k-th conditions the k-th B / K rows of the task's RL batch."""
    K = 2
    a = make_agent(contrastive=False, contexts_per_task=K)
    a.train_iteration()
    T, B, C, L = a.cfg.meta_batch, a.cfg.batch_size, a.cfg.embedding_batch_size, a.cfg.latent_dim
    seen_q = []
    qf1 = a.qf1.forward
    monkeypatch.setattr(a.qf1, "forward", lambda x: seen_q.append(x) or qf1(x))
    (context,) = update_contexts(a, monkeypatch)
    assert context.shape == (T * K, C, a.context_dim)
    z = seen_q[0][..., -L:]  # (T, B, L)
    parts = z.view(T, K, B // K, L)
    assert (parts == parts[:, :, :1]).all()  # one z per part
    assert (parts[:, 0, 0] != parts[:, 1, 0]).any(-1).all()  # K different ones per task
    with pytest.raises(ValueError, match="divide batch_size"):
        replace(a.cfg, contexts_per_task=3)
    with pytest.raises(ValueError, match="reward_decoder_weight must be 0"):
        replace(a.cfg, reward_decoder_weight=-1.0)

    def make(seed):
        return make_agent(contrastive=True, seed=seed, contexts_per_task=K)

    check_resume(make, lambda agent: (agent.encoder, agent.qf1))
