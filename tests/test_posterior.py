"""The posterior can identify the task: PEARL's encoder (a product of per-transition
Gaussian factors), fitted to name which of two known point-robot goals a fresh one-episode
context comes from, does so; with the reward hidden from it, it cannot (the check can fail).

Measured beside it: PEARL's own update, on buffers of ten random-walk episodes per goal,
left fresh one-episode contexts at 0.5-0.7 nearest-centroid accuracy after 1,000 gradient
steps, even with fresh episodes streamed into the buffers, while it told its own buffer
contexts apart from the start (their states differ by chance, untrained included). The
critic's gradient teaches the encoder slowly what the rewards say.
"""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from cocoa.context import ContextEncoder
from cocoa.envs import get_family, make_task
from cocoa.rollout import rollout
from cocoa.scripted import _Walk

GOALS = ((0.7, 0.7), (-0.7, -0.7))


class RandomWalk:
    """Uniform random actions from the random start."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def reset(self):
        pass

    def act(self, obs):
        return self.rng.uniform(-1, 1, 2)

    def observe(self, t):
        pass


def episodes(env, task, n, seed):
    env.set_task(task)
    policy = RandomWalk(seed)
    return [rollout(env, policy, seed=seed if i == 0 else None) for i in range(n)]


def two_goal_tasks():
    family = get_family("point-robot")
    tasks = [make_task(family.name, "train", i, g, goal=np.array(g)) for i, g in enumerate(GOALS)]
    return family, tasks, family.make_env(tasks[0])


def fitted_accuracy(hide_reward: bool, steps: int = 600) -> float:
    """Fits encoder → z → logistic readout of the goal on streams of fresh one-episode
    contexts; returns the readout's accuracy on the posterior means of fresh ones."""
    family, tasks, env = two_goal_tasks()
    torch.manual_seed(0)
    encoder = ContextEncoder(5, 5, (64, 64))
    readout = torch.nn.Linear(5, 1)
    opt = torch.optim.Adam([*encoder.parameters(), *readout.parameters()], lr=3e-3)

    def contexts(seed):  # (2, 16, 20, 5): 16 one-episode contexts per task
        out = []
        for i, task in enumerate(tasks):
            eps = episodes(env, task, 16, seed + i)
            ctx = np.stack(
                [np.concatenate([e.observations, e.actions, e.rewards[:, None]], 1) for e in eps]
            )
            if hide_reward:
                ctx[..., -1] = 0.0
            out.append(ctx)
        return torch.as_tensor(np.stack(out), dtype=torch.float32)

    labels = torch.tensor([[0.0] * 16, [1.0] * 16])
    for step in range(steps // 10):
        batch = contexts(10 * step)
        for _ in range(10):
            mu, var = encoder(batch)  # (2, 16, latent)
            z = mu + var.sqrt() * torch.randn_like(mu)
            loss = F.binary_cross_entropy_with_logits(readout(z)[..., 0], labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mu, _ = encoder(torch.cat([contexts(100_000), contexts(200_000)], 1))  # (2, 32, L)
        predicted = readout(mu)[..., 0] > 0  # (2, 32): goal 1?
    return float((predicted == torch.tensor([[False], [True]])).float().mean())


def test_fitted_encoder_identifies_the_goal_from_one_fresh_episode():
    assert fitted_accuracy(hide_reward=False) >= 0.9  # measured 0.97
    assert fitted_accuracy(hide_reward=True) <= 0.7  # measured 0.45: chance


# --------------------------------------------------------------- the goal from one episode


def to_point(s, target, goal) -> torch.Tensor:
    """One-episode contexts (s, a, r, s′) ``(n, 20, 7)`` of episodes that start at ``s`` and
    head at full speed for ``target`` (the path bends where one axis arrives), as an episode
    under a prior z does, on the point robot with goal ``goal``; each ``(n, 2)``."""
    rows = []
    for _ in range(20):
        a = (10 * (target - s)).clamp(-1.0, 1.0)  # the policy's action, in [-1, 1]
        s_next = s + 0.1 * a  # the env's action bounds are ±0.1
        r = -(s_next - goal).norm(dim=-1, keepdim=True)
        rows.append(torch.cat([s, a, r, s_next], -1))
        s = s_next
    return torch.stack(rows, 1)


def random_to_point(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` contexts of ``to_point`` with uniform starts, targets and goals, and the goals."""
    s, target, goal = (
        torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(3)
    )
    return to_point(s, target, goal).float(), goal.float()


def test_to_point_contexts_are_the_envs():
    family = get_family("point-robot")
    rng = np.random.default_rng(0)
    for i in range(3):
        target, goal = rng.uniform(-1, 1, (2, 2))
        task = make_task(family.name, "train", i, tuple(goal), goal=goal)
        env = family.make_env(task)
        env.set_task(task)
        episode = rollout(env, _Walk(target), seed=i)  # at full speed to target
        start = torch.as_tensor(episode.observations[:1])
        ctx = to_point(start, torch.as_tensor(target[None]), torch.as_tensor(goal[None]))[0]
        expected = np.concatenate(
            [
                episode.observations,
                episode.actions,
                episode.rewards[:, None],
                episode.next_observations,
            ],
            1,
        )
        np.testing.assert_allclose(ctx.numpy(), expected, atol=1e-6)


def least_squares_goal(ctx: np.ndarray) -> np.ndarray:
    """The goal from one context by trilateration: every reward says |s′ − g|² = r², i.e.
    2 s′·g − |g|² = |s′|² − r², linear in (g, |g|²); solved by least squares. On a straight
    path the goal and its mirror image fit alike; lstsq then returns the minimum-norm
    solution. (``cocoa.scripted.goal_estimate``, which returns the mirror pair's midpoint on
    a straight path, reads 0.78 on these episodes, against 0.92 here; the higher of the two
    is the ceiling the encoders are held under.)"""
    s_next, r = ctx[:, 5:7], ctx[:, 4]
    A = np.column_stack([2 * s_next, -np.ones(len(r))])
    b = (s_next**2).sum(1) - r**2
    return np.linalg.lstsq(A, b, rcond=None)[0][:2]


def goal_r2(predicted: np.ndarray, goal: np.ndarray) -> float:
    return float(1 - ((predicted - goal) ** 2).mean() / goal.var(0).mean())


def fitted_goal_r2(attention_layers: int, steps: int = 600) -> float:
    """Goal R² of encoder → posterior mean → linear read-out, fitted by regression on streams
    of fresh one-episode contexts (256 per step), on 2,048 held-out contexts."""
    torch.manual_seed(0)
    encoder = ContextEncoder(7, 5, (64, 64), attention_layers)
    readout = torch.nn.Linear(5, 2)
    opt = torch.optim.Adam([*encoder.parameters(), *readout.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ctx, goal = random_to_point(256, gen)
        loss = F.mse_loss(readout(encoder(ctx)[0]), goal)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ctx, goal = random_to_point(2048, torch.Generator().manual_seed(2))
    with torch.no_grad():
        return goal_r2(readout(encoder(ctx)[0]).numpy(), goal.numpy())


@pytest.mark.slow
def test_one_episode_fixes_the_goal_and_attention_lets_the_encoder_learn_it():
    """One prior-like episode fixes the goal (trilateration: R² 0.92; its straight paths
    leave a mirror ambiguity), and an encoder with one self-attention block over the episode
    learns it faster than PEARL's per-transition factors. Measured after 600 steps of 256
    fresh episodes: 0.73 against 0.53 (two blocks: 0.79). The threshold asks for half the
    measured lead; a learner whose attention did not help would fail."""
    ctx, goal = random_to_point(2048, torch.Generator().manual_seed(2))
    ceiling = goal_r2(np.stack([least_squares_goal(c) for c in ctx.double().numpy()]), goal.numpy())
    assert ceiling > 0.9
    factors, attention = fitted_goal_r2(0), fitted_goal_r2(1)
    assert attention > factors + 0.1, (attention, factors)
    assert attention < ceiling


def bayes_goal(ctx: np.ndarray, sigma: float, grid: np.ndarray) -> np.ndarray:
    """The posterior mean of the goal given one context, for a uniform prior on ``grid`` and
    rewards read with Gaussian noise of std ``sigma``."""
    s_next, r = ctx[:, 5:7], ctx[:, 4]
    predicted = -np.linalg.norm(s_next[None] - grid[:, None], axis=-1)  # (grid, rows)
    log_lik = -((predicted - r) ** 2).sum(1) / (2 * sigma**2)
    w = np.exp(log_lik - log_lik.max())
    return w @ grid / w.sum()


def test_one_episode_fixes_the_goal_even_when_rewards_are_read_coarsely():
    """Exact trilateration leans on how a path bends; an encoder reads rewards less exactly.
    Read with noise of std 0.03, one prior-like episode still gives a Bayes posterior mean of
    the goal with R² 0.91 (measured on these 256 episodes; 0.83 at std 0.1 on 1,024), above
    the 0.85 a score of 0.8 needs (``test_scripted.test_goal_precision_a_score_of_0_8_needs``);
    with another episode's rewards, nothing (R² −1.3)."""
    ctx, goal = random_to_point(256, torch.Generator().manual_seed(2))
    ctx, goal = ctx.double().numpy(), goal.numpy()
    axis = np.linspace(-1, 1, 101)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    rng = np.random.default_rng(0)
    noisy = ctx.copy()
    noisy[..., 4] += rng.normal(0, 0.03, noisy[..., 4].shape)
    assert goal_r2(np.stack([bayes_goal(c, 0.03, grid) for c in noisy]), goal) > 0.85
    shuffled = noisy.copy()
    shuffled[..., 4] = noisy[np.roll(np.arange(len(noisy)), 1), :, 4]  # another episode's rewards
    assert goal_r2(np.stack([bayes_goal(c, 0.03, grid) for c in shuffled]), goal) < 0
