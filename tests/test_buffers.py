"""MultiTaskReplayBuffer: shapes, FIFO, contiguous episodes and CoCOA's crops, sampled with a
numpy generator (host arrays) or a torch generator (tensors on the buffer's device)."""

import io

import numpy as np
import pytest
import torch

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


def filled(n_tasks=4, episodes=3, length=20, capacity=1000, lengths=None):
    """Task t holds ``episodes`` episodes; episode table entry i is tagged i."""
    buf = MultiTaskReplayBuffer(n_tasks, capacity, 2, 1, device="cpu")
    tag = 0
    for t in range(n_tasks):
        for j in range(episodes):
            n = lengths[t][j] if lengths else length
            buf.add_episode(t, make_episode(n, tag=tag))
            tag += 1
    return buf


def test_torch_sampling_returns_device_tensors_of_the_right_tasks():
    buf = filled(n_tasks=3, episodes=1, length=10)
    gen = torch.Generator().manual_seed(0)
    batch = buf.sample(np.array([2, 0, 2]), 7, gen)
    for field in batch:
        assert isinstance(field, torch.Tensor) and field.device == buf.device
        assert field.dtype == torch.float32
    assert batch.observations.shape == (3, 7, 2) and batch.actions.shape == (3, 7, 1)
    assert batch.rewards.shape == batch.terminals.shape == (3, 7, 1)
    # task t holds one episode tagged t: observation[:, 0] = t, reward = t, s' = s + 1
    torch.testing.assert_close(
        batch.observations[..., 0], torch.tensor([[2.0], [0.0], [2.0]]).expand(3, 7)
    )
    torch.testing.assert_close(batch.rewards[..., 0], batch.observations[..., 0])
    torch.testing.assert_close(batch.next_observations, batch.observations + 1)
    ctx = buf.sample_context(np.array([1]), 5, gen, use_next_obs=False)
    assert isinstance(ctx, torch.Tensor) and ctx.shape == (1, 5, 2 + 1 + 1)
    torch.testing.assert_close(ctx[0, :, -1], torch.full((5,), 10.0))  # the context reward
    ctx = buf.sample_context(np.array([1]), 5, gen, use_next_obs=True)
    assert ctx.shape == (1, 5, 6)
    torch.testing.assert_close(ctx[0, :, 4:], ctx[0, :, :2] + 1)  # s' after (s, a, r)


def test_torch_rows_cover_each_task_uniformly_and_only_its_filled_rows():
    buf = MultiTaskReplayBuffer(2, 100, 2, 1)
    buf.add_episode(0, make_episode(10, tag=0))
    buf.add_episode(1, make_episode(30, tag=1))
    batch = buf.sample(np.array([0, 1]), 3000, torch.Generator().manual_seed(1))
    steps = batch.observations[..., 1]  # the time step = the row within the task
    assert set(steps[0].long().tolist()) == set(range(10))
    assert set(steps[1].long().tolist()) == set(range(30))
    counts = torch.bincount(steps[1].long(), minlength=30).float()
    assert counts.min() > 0.5 * counts.mean()  # roughly uniform
    with pytest.raises(RuntimeError, match="empty"):
        MultiTaskReplayBuffer(1, 10, 2, 1).sample(np.array([0]), 3, torch.Generator())


def test_torch_crops_are_windows_of_one_intact_episode():
    lengths = [[20, 6, 20], [20, 20, 20], [8, 30, 20], [20, 20, 20]]
    buf = filled(lengths=lengths)
    gen = torch.Generator().manual_seed(2)
    tasks = np.array([0, 2, 3])
    eligible = {
        i for i in range(len(buf.ep_task)) if buf.ep_task[i] in tasks and buf.ep_len[i] >= 8
    }
    seen = set()
    for _ in range(50):
        q, k, eps = buf.sample_crops(tasks, 6, 8, gen, use_next_obs=False)
        assert isinstance(q, torch.Tensor) and q.shape == k.shape == (6, 8, 4)
        assert len(set(eps.tolist())) == 6 and set(eps.tolist()) <= eligible
        seen |= set(eps.tolist())
        for i, e in enumerate(eps.tolist()):
            for crop in (q[i], k[i]):  # query and key: the same episode
                # episode e (tagged e) in every row, consecutive time steps inside it
                assert torch.all(crop[:, 0] == e)
                np.testing.assert_array_equal(np.diff(crop[:, 1].numpy()), 1)
                assert 0 <= crop[0, 1] and crop[-1, 1] < buf.ep_len[e]
    assert seen == eligible  # every eligible episode gets drawn; the 6-step one never


def test_torch_crop_offsets_reach_both_ends_of_an_episode():
    buf = filled(n_tasks=1, episodes=2, length=12)
    gen = torch.Generator().manual_seed(3)
    firsts = set()
    for _ in range(200):
        q, k, _ = buf.sample_crops(np.array([0]), 2, 10, gen, use_next_obs=True)
        assert q.shape == (2, 10, 6)
        firsts |= set(q[:, 0, 1].tolist()) | set(k[:, 0, 1].tolist())
    assert firsts == {0.0, 1.0, 2.0}  # offsets 0 .. length − window


def test_crops_take_all_eligible_episodes_when_fewer_than_asked():
    buf = filled(n_tasks=2, episodes=2, length=10)
    for rng in (np.random.default_rng(0), torch.Generator().manual_seed(0)):
        q, _, eps = buf.sample_crops(np.array([1]), 16, 5, rng, use_next_obs=False)
        assert q.shape[0] == 2 and sorted(eps.tolist()) == [2, 3]
        with pytest.raises(RuntimeError, match="at least 2 episodes"):
            buf.sample_crops(np.array([1]), 16, 11, rng, use_next_obs=False)


def _sequence_pieces(seq):
    """Split one sequence ``(batch, ctx)`` of tagged rows into its (tag, time steps) runs."""
    pieces, start = [], 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or seq[i, 0] != seq[i - 1, 0] or seq[i, 1] != seq[i - 1, 1] + 1:
            pieces.append((int(seq[start, 0]), seq[start:i, 1].astype(int).tolist()))
            start = i
    return pieces


@pytest.mark.parametrize("rng", [np.random.default_rng(0), torch.Generator().manual_seed(0)])
def test_sequences_are_whole_episodes_of_the_task_in_order_cut_at_the_batch(rng):
    lengths = [[5, 7, 5], [6, 6, 6], [9, 5, 8], [5, 5, 5]]
    buf = filled(lengths=lengths)
    tasks = np.array([2, 0, 2])
    seen = {0: set(), 2: set()}
    for _ in range(40):
        seqs = buf.sample_sequences(tasks, 13, rng, use_next_obs=False)
        assert tuple(seqs.shape) == (3, 13, 4)
        for task, seq in zip(tasks, np.asarray(seqs)):
            pieces = _sequence_pieces(seq)
            for j, (tag, steps) in enumerate(pieces):
                assert buf.ep_task[tag] == task  # episode table entry `tag`, of this task
                assert steps[0] == 0  # every episode starts at its first step
                if j < len(pieces) - 1:  # whole, except the last, cut at 13 rows
                    assert len(steps) == buf.ep_len[tag]
            seen[int(task)] |= {tag for tag, _ in pieces}
    assert seen == {0: {0, 1, 2}, 2: {6, 7, 8}}  # every episode of the task gets drawn
    with pytest.raises(RuntimeError, match=r"no intact episodes to sample in tasks \[1\]"):
        buf.clear(1)
        buf.sample_sequences(np.array([0, 1]), 4, rng, use_next_obs=False)


def test_sequences_with_the_same_generator_state_are_the_same():
    buf = filled(lengths=[[5, 7, 5]] * 4)
    a = buf.sample_sequences(np.arange(4), 11, torch.Generator().manual_seed(5), True)
    b = buf.sample_sequences(np.arange(4), 11, torch.Generator().manual_seed(5), True)
    assert a.shape == (4, 11, 6)
    torch.testing.assert_close(a, b)


def test_torch_sampling_follows_clear_and_new_episodes():
    buf = filled(n_tasks=2, episodes=2, length=10)
    gen = torch.Generator().manual_seed(4)
    buf.sample_crops(np.array([0, 1]), 4, 5, gen, use_next_obs=False)  # builds the device index
    buf.clear(0)
    _, _, eps = buf.sample_crops(np.array([0, 1]), 4, 5, gen, use_next_obs=False)
    assert set(buf.ep_task[eps.numpy()].tolist()) == {1}
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample(np.array([0]), 2, gen)
    buf.add_episode(0, make_episode(7, tag=9.0))
    batch = buf.sample(np.array([0]), 50, gen)
    assert torch.all(batch.observations[..., 0] == 9.0)
    assert set(batch.observations[0, :, 1].long().tolist()) <= set(range(7))


def test_same_generator_state_same_samples():
    buf = filled()
    draws = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        b = buf.sample(np.array([0, 3]), 9, gen)
        q, k, eps = buf.sample_crops(np.array([1, 2]), 4, 8, gen, use_next_obs=False)
        draws.append((*b, q, k, eps))
    for x, y in zip(*draws):
        assert torch.equal(x, y)


def test_numpy_and_torch_paths_read_the_same_storage():
    buf = filled(n_tasks=2, episodes=1, length=10)
    rows = np.array([[3, 7], [0, 9]])
    ctx = buf.context(np.array([1, 0]), rows, use_next_obs=True)
    assert isinstance(ctx, np.ndarray) and ctx.shape == (2, 2, 6)
    np.testing.assert_array_equal(ctx[..., 1], rows)  # observation[:, 1] = time step
    np.testing.assert_array_equal(ctx[..., 0], [[1, 1], [0, 0]])  # the tag = the task here
    recent = buf.recent_context(1, 4, use_next_obs=False)
    np.testing.assert_array_equal(recent[0, :, 1], [6, 7, 8, 9])
    # on CPU the storage is one tensor; the numpy results are host arrays
    assert (
        buf.storage.device.type == "cpu"
        and buf.storage.shape[-1] == buf.width == 2 + 1 + 1 + 2 + 1 + 1
    )


def test_state_dict_round_trip_through_a_checkpoint(checkpoint_round_trip):
    buf = MultiTaskReplayBuffer(3, 5000, 2, 1)
    for k in range(90):  # grows the storage past its first allocation
        buf.add_episode(k % 3, make_episode(25 + k % 4, tag=k))
    buf.clear(1)
    state = checkpoint_round_trip(buf.state_dict())
    for v in state["data"].values():  # host data: loadable without the device
        assert isinstance(v, np.ndarray) or v.device.type == "cpu"
    other = MultiTaskReplayBuffer(3, 5000, 2, 1)
    other.load_state_dict(state)
    for name in ("ptr", "filled", "ep_task", "ep_start", "ep_len"):
        np.testing.assert_array_equal(getattr(buf, name), getattr(other, name))
    for t, n in enumerate(buf.filled):  # every row that can be read (task 1 holds none)
        assert torch.equal(buf.storage[t, :n], other.storage[t, :n])
    g1, g2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    for x, y in zip(buf.sample(np.array([0, 2]), 11, g1), other.sample(np.array([0, 2]), 11, g2)):
        assert torch.equal(x, y)
    a = buf.sample_crops(np.array([0, 2]), 5, 20, g1, use_next_obs=True)
    b = other.sample_crops(np.array([0, 2]), 5, 20, g2, use_next_obs=True)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    # and both keep growing identically
    for x in (buf, other):
        x.add_episode(1, make_episode(30, tag=-1))
    for t, n in enumerate(buf.filled):
        assert torch.equal(buf.storage[t, :n], other.storage[t, :n])


def rollout_episode(rng, T=20, obs_dim=3):
    """An episode as a rollout writes it: next_observations[t] = observations[t + 1]."""
    states = rng.normal(size=(T + 1, obs_dim)).astype(np.float32)
    z = np.zeros(T, np.float32)
    terminals = z.copy()
    terminals[-1] = 1.0
    r = rng.normal(size=T).astype(np.float32)
    actions = rng.normal(size=(T, 2)).astype(np.float32)
    return Episode(states[:-1], actions, r, r, states[1:], terminals, z)


def test_checkpoint_stores_only_readable_rows_compactly(checkpoint_round_trip):
    rng = np.random.default_rng(0)
    buf = MultiTaskReplayBuffer(3, 100, 3, 2)
    for k in range(14):  # task 0 wraps (FIFO), task 2 is cleared, task 1 is half full
        buf.add_episode([0, 0, 1, 2][k % 4], rollout_episode(rng, T=20 + k % 3))
    buf.clear(2)
    buf.add_episode(2, rollout_episode(rng, T=7))
    state = checkpoint_round_trip(buf.state_dict())
    data = state["data"]
    # one stored next observation per intact episode end or overwritten boundary, not per row
    assert len(data["next_observations_rows"]) <= len(buf.ep_len) + buf.n_tasks
    assert len(data["observations"]) == buf.filled.sum()
    assert data["terminals"].dtype == torch.bool
    other = MultiTaskReplayBuffer(3, 100, 3, 2)
    other.load_state_dict(state)
    for t, n in enumerate(buf.filled):
        assert torch.equal(buf.storage[t, :n], other.storage[t, :n])  # bit for bit
    # a checkpoint of the loaded buffer is the same checkpoint
    again = other.state_dict()
    for k, v in data.items():
        np.testing.assert_array_equal(v, again["data"][k])
    # an emptied state loads as an empty buffer
    empty = MultiTaskReplayBuffer(3, 100, 3, 2)
    emptied = MultiTaskReplayBuffer.empty_state(state)
    empty.load_state_dict(emptied)
    assert empty.filled.sum() == 0 and len(empty.ep_len) == 0
    data_bytes = sum(v.numpy().nbytes for v in data.values())
    # no storage of the full data left inside (torch.save writes a view's whole storage)
    assert len(checkpoint_bytes(emptied)) < len(checkpoint_bytes(state)) - data_bytes / 2


def checkpoint_bytes(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def format_1_state(buf):
    """``buf``'s state in the first checkpoint format: whole (task, rows, ·) blocks."""
    block = buf.storage[:, : int(buf.filled.max())]
    return {
        "data": {k: block[..., c].numpy().copy() for k, c in buf.columns.items()},
        **{k: getattr(buf, k).copy() for k in ("ptr", "filled", "ep_task", "ep_start", "ep_len")},
    }


def test_format_1_checkpoints_still_load():
    buf = MultiTaskReplayBuffer(2, 500, 2, 1)
    for k in range(9):
        buf.add_episode(k % 2, make_episode(20, tag=k))
    top = int(buf.filled.max())
    old = format_1_state(buf)
    other = MultiTaskReplayBuffer(2, 500, 2, 1)
    other.load_state_dict(old)
    assert torch.equal(buf.storage[:, :top], other.storage[:, :top])


def test_a_format_1_state_empties_into_a_loadable_format_2_state():
    buf = MultiTaskReplayBuffer(2, 500, 2, 1)
    for k in range(5):
        buf.add_episode(k % 2, make_episode(20, tag=k))
    old = format_1_state(buf)
    emptied = MultiTaskReplayBuffer.empty_state(old)
    assert emptied["format"] == 2
    assert emptied["data"]["next_observations_rows"].dtype == torch.int64
    assert emptied["data"]["observations"].shape == (0, 2)
    other = MultiTaskReplayBuffer(2, 500, 2, 1)
    other.load_state_dict(emptied)
    assert other.filled.sum() == 0 and len(other.ep_len) == 0
    other.add_episode(1, make_episode(20, tag=9))  # usable again
    assert other.size(1) == 20
