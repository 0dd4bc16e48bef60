"""MultiTaskReplayBuffer: shapes, FIFO, contiguous episodes and CoCOA's crops."""

import numpy as np
import pytest

from cocoa.buffers import MultiTaskReplayBuffer
from cocoa.types import Episode


def make_episode(T, obs_dim=2, act_dim=1, tag=0.0):
    """An episode whose observation[:, 0] = tag and observation[:, 1] = time step."""
    obs = np.stack([np.full(T, tag), np.arange(T)], 1).astype(np.float32)[:, :obs_dim]
    z = np.zeros(T, np.float32)
    return Episode(obs, np.zeros((T, act_dim), np.float32), z + tag, z + 10 * tag, obs + 1, z, z)


def test_sample_shapes_and_per_task_data():
    buf = MultiTaskReplayBuffer(3, 100, 2, 1)
    for t in range(3):
        buf.add_episode(t, make_episode(10, tag=t))
    rng = np.random.default_rng(0)
    batch = buf.sample(np.array([2, 0, 2]), 7, rng)
    assert batch.observations.shape == (3, 7, 2)
    assert batch.rewards.shape == (3, 7, 1)
    np.testing.assert_array_equal(batch.observations[:, :, 0], [[2] * 7, [0] * 7, [2] * 7])
    ctx = buf.sample_context(np.array([1]), 5, rng, use_next_obs=False)
    assert ctx.shape == (1, 5, 2 + 1 + 1)
    np.testing.assert_array_equal(ctx[0, :, -1], 10.0)  # the context reward, not the RL reward
    assert buf.sample_context(np.array([1]), 5, rng, use_next_obs=True).shape == (1, 5, 6)


def test_fifo_wraps_keeping_episodes_contiguous():
    buf = MultiTaskReplayBuffer(1, 25, 2, 1)
    for k in range(3):
        buf.add_episode(0, make_episode(10, tag=k))
    # the third episode does not fit after row 20: it is written at rows 0..9
    assert buf.size(0) == 20
    np.testing.assert_array_equal(buf.data["observations"][0, :10, 0], 2)
    np.testing.assert_array_equal(buf.data["observations"][0, 10:20, 0], 1)
    assert sorted(buf.ep_start.tolist()) == [0, 10]  # episode 0 was overwritten


def test_clear_empties_one_task():
    buf = MultiTaskReplayBuffer(2, 50, 2, 1)
    buf.add_episode(0, make_episode(5))
    buf.add_episode(1, make_episode(5))
    buf.clear(0)
    assert buf.size(0) == 0 and buf.size(1) == 5
    assert buf.ep_task.tolist() == [1]
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample(np.array([0]), 3, np.random.default_rng(0))


def test_crops_stay_inside_one_episode():
    buf = MultiTaskReplayBuffer(4, 1000, 2, 1)
    tag = 0
    for t in range(4):
        for _ in range(3):
            buf.add_episode(t, make_episode(20, tag=tag))
            tag += 1
    rng = np.random.default_rng(1)
    for _ in range(20):
        q, k, eps = buf.sample_crops(np.array([0, 2, 3]), 6, 8, rng, use_next_obs=False)
        assert q.shape == k.shape == (6, 8, 4)
        assert len(set(eps.tolist())) == 6  # distinct episodes
        for i in range(6):
            # every row of a crop carries its episode's tag, time steps are consecutive
            assert len(set(q[i, :, 0].tolist())) == 1
            assert q[i, 0, 0] == k[i, 0, 0]
            np.testing.assert_array_equal(np.diff(q[i, :, 1]), 1)
            np.testing.assert_array_equal(np.diff(k[i, :, 1]), 1)
            assert buf.ep_task[eps[i]] in (0, 2, 3)


def test_growth_and_state_round_trip():
    buf = MultiTaskReplayBuffer(2, 5000, 2, 1)
    for k in range(150):
        buf.add_episode(k % 2, make_episode(20, tag=k))
    assert buf.size(0) == 1500
    other = MultiTaskReplayBuffer(2, 5000, 2, 1)
    other.load_state_dict(buf.state_dict())
    a = buf.sample(np.array([0, 1]), 9, np.random.default_rng(3))
    b = other.sample(np.array([0, 1]), 9, np.random.default_rng(3))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
