"""Replay storage for off-policy meta-RL: one FIFO buffer per task, sampled as (task, batch, ·).

``MultiTaskReplayBuffer`` keeps every transition as one row of a ``(n_tasks, rows, width)``
float32 tensor on a device; the fields (observations, actions, ...) are column ranges of a row,
and the context (s, a, r[, s']) is a prefix of it. A batch for a meta-batch of tasks is then a
single ``index_select`` (no Python loop over tasks). Episodes are written contiguously (the
write pointer wraps to row 0 before an episode that would not fit), so a temporal crop of an
intact episode is a contiguous row range: ``sample_crops`` draws CoCOA's query/key windows from
it. Storage grows by doubling up to ``capacity`` rows per task.

Every ``sample*`` method takes its randomness from either

* a ``torch.Generator`` on the buffer's device: the draws, the gather and the result stay on
  that device (tensors out). A gradient step then needs no host→device copy of its batch and
  no host sync; only the meta-batch's task indices (a few integers) move, asynchronously.
* a numpy ``Generator``: host arrays out, for the occasional draw while collecting data.

The task indices are always host arrays: the emptiness checks read the host copy of the
bookkeeping (``filled`` and the episode table), which a device copy mirrors for the draws.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .nets import to_device
from .types import Episode

Generator = np.random.Generator | torch.Generator


class TransitionBatch(NamedTuple):
    """Transitions for a meta-batch of tasks; every field is ``(task, batch, ·)`` float32,
    numpy arrays or tensors on the buffer's device (following the generator)."""

    observations: np.ndarray | torch.Tensor
    actions: np.ndarray | torch.Tensor
    rewards: np.ndarray | torch.Tensor  # (task, batch, 1) dense RL reward
    next_observations: np.ndarray | torch.Tensor
    terminals: np.ndarray | torch.Tensor  # (task, batch, 1)


class _DeviceIndex(NamedTuple):
    """The device's copy of the bookkeeping that sampling reads."""

    filled: torch.Tensor  # (n_tasks,) rows held per task
    # the episode table, one row per episode: [task, first row, length, first row's index
    # in the flattened (n_tasks · rows) storage]
    episodes: torch.Tensor  # (episodes, 4)


class MultiTaskReplayBuffer:
    """Per-task FIFO replay buffers with episode bookkeeping.

    Args:
        n_tasks: number of tasks (buffer index = task index in the training list).
        capacity: rows per task at most.
        obs_dim, act_dim: transition sizes.
        device: where the transitions live and where ``torch.Generator`` sampling runs.
    """

    def __init__(
        self,
        n_tasks: int,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        device: torch.device | str = "cpu",
    ):
        self.n_tasks, self.capacity = int(n_tasks), int(capacity)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = torch.device(device)
        o, a = self.obs_dim, self.act_dim
        # a row: [s, a, r_context, s', r, d]; the context (s, a, r_context[, s']) is a prefix
        widths = {
            "observations": o,
            "actions": a,
            "context_rewards": 1,
            "next_observations": o,
            "rewards": 1,
            "terminals": 1,
        }
        self.columns: dict[str, slice] = {}
        for name, w in widths.items():
            start = sum(c.stop - c.start for c in self.columns.values())
            self.columns[name] = slice(start, start + w)
        self.width = self.columns["terminals"].stop
        self.storage = torch.zeros((self.n_tasks, 0, self.width), device=self.device)
        self._resize(min(self.capacity, 1024))
        self.ptr = np.zeros(n_tasks, dtype=np.int64)  # next write row
        self.filled = np.zeros(n_tasks, dtype=np.int64)  # rows [0, filled) hold data
        # the episode table: one entry per intact episode, over all tasks
        self.ep_task = np.zeros(0, dtype=np.int64)
        self.ep_start = np.zeros(0, dtype=np.int64)
        self.ep_len = np.zeros(0, dtype=np.int64)
        self._index: _DeviceIndex | None = None  # built on the first draw after a change

    # ---------------------------------------------------------------- storage

    @property
    def data(self) -> dict[str, torch.Tensor]:
        """Each field as a ``(n_tasks, rows, width)`` view of the storage."""
        return {name: self.storage[..., cols] for name, cols in self.columns.items()}

    def _resize(self, rows: int) -> None:
        new = torch.zeros((self.n_tasks, rows, self.width), device=self.device)
        new[:, : self.storage.shape[1]] = self.storage
        self.storage = new

    def size(self, task: int) -> int:
        """Rows of data held for ``task``."""
        return int(self.filled[task])

    def add_episode(self, task: int, episode: Episode) -> None:
        """Appends ``episode`` to ``task``'s buffer (contiguously; wraps to row 0 if needed)."""
        n = len(episode)
        if n == 0:
            return
        if n > self.capacity:
            raise ValueError(f"episode of {n} steps exceeds the buffer capacity {self.capacity}")
        start = int(self.ptr[task])
        if start + n > self.capacity:  # wrap: keep the episode contiguous
            start = 0
        end = start + n
        while end > self.storage.shape[1]:
            self._resize(min(self.capacity, 2 * self.storage.shape[1]))
        # entries whose first row is overwritten are no longer intact episodes
        hit = (self.ep_task == task) & (self.ep_start >= start) & (self.ep_start < end)
        if hit.any():
            keep = ~hit
            self.ep_task, self.ep_start, self.ep_len = (
                self.ep_task[keep],
                self.ep_start[keep],
                self.ep_len[keep],
            )
        rows = np.concatenate(
            [
                episode.observations,
                episode.actions,
                episode.context_rewards[:, None],
                episode.next_observations,
                episode.rewards[:, None],
                episode.terminals[:, None],
            ],
            axis=1,
            dtype=np.float32,
        )  # (n, width)
        self.storage[task, start:end] = torch.from_numpy(rows).to(self.device)
        self.ptr[task] = end
        self.filled[task] = max(self.filled[task], end)
        self.ep_task = np.append(self.ep_task, task)
        self.ep_start = np.append(self.ep_start, start)
        self.ep_len = np.append(self.ep_len, n)
        self._index = None

    def clear(self, task: int) -> None:
        """Empties ``task``'s buffer (PEARL clears a task's encoder buffer before collecting)."""
        self.ptr[task] = 0
        self.filled[task] = 0
        keep = self.ep_task != task
        self.ep_task, self.ep_start, self.ep_len = (
            self.ep_task[keep],
            self.ep_start[keep],
            self.ep_len[keep],
        )
        self._index = None

    def _device_index(self) -> _DeviceIndex:
        """The bookkeeping on the device, copied once per change of the buffer."""
        if self._index is None:
            first = self.ep_task * self.storage.shape[1] + self.ep_start
            table = np.stack([self.ep_task, self.ep_start, self.ep_len, first], axis=1)
            self._index = _DeviceIndex(
                to_device(self.filled.copy(), self.device), to_device(table, self.device)
            )
        return self._index

    # --------------------------------------------------------------- sampling

    def _rows(
        self, tasks: np.ndarray, task_t: torch.Tensor, batch: int, rng: Generator
    ) -> torch.Tensor:
        """Uniform rows in [0, size) per task: ``(task, batch)`` on the device."""
        sizes = self.filled[tasks]
        if np.any(sizes == 0):
            empty = tasks[sizes == 0]
            raise RuntimeError(f"sampling from empty buffers of tasks {empty.tolist()}")
        if isinstance(rng, np.random.Generator):
            rows = np.floor(rng.random((len(tasks), batch)) * sizes[:, None]).astype(np.int64)
            return to_device(rows, self.device)
        u = torch.rand((len(tasks), batch), generator=rng, device=self.device, dtype=torch.float64)
        return (u * self._device_index().filled[task_t, None]).long()  # floor: u · size >= 0

    def _gather(self, flat: torch.Tensor, cols: slice) -> torch.Tensor:
        """Columns ``cols`` of the rows at ``flat`` indices of the flattened storage:
        ``(*flat.shape, width)`` on the device, one ``index_select``."""
        table = self.storage.view(-1, self.width)[:, cols]  # (n_tasks · rows, width)
        return table.index_select(0, flat.reshape(-1)).view(*flat.shape, -1)

    def _flat(self, task_t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Indices into the flattened storage of ``rows`` ``(task, n)`` of tasks ``(task,)``."""
        return task_t[:, None] * self.storage.shape[1] + rows

    def _context_cols(self, use_next_obs: bool) -> slice:
        last = "next_observations" if use_next_obs else "context_rewards"
        return slice(0, self.columns[last].stop)

    @staticmethod
    def _out(x: torch.Tensor, rng: Generator) -> np.ndarray | torch.Tensor:
        return x.cpu().numpy() if isinstance(rng, np.random.Generator) else x

    def sample(self, tasks: np.ndarray, batch: int, rng: Generator) -> TransitionBatch:
        """Uniform transitions of each task in ``tasks``; fields ``(len(tasks), batch, ·)``."""
        tasks = np.asarray(tasks, dtype=np.int64)
        task_t = to_device(tasks, self.device)
        rows = self._rows(tasks, task_t, batch, rng)
        x = self._out(self._gather(self._flat(task_t, rows), slice(None)), rng)  # (task, batch, ·)
        c = self.columns
        return TransitionBatch(
            x[..., c["observations"]],
            x[..., c["actions"]],
            x[..., c["rewards"]],
            x[..., c["next_observations"]],
            x[..., c["terminals"]],
        )

    def context(self, tasks: np.ndarray, rows: np.ndarray, use_next_obs: bool) -> np.ndarray:
        """Context transitions (s, a, r[, s']) at ``rows`` (shape (task, n)) of ``tasks``.

        The reward is the context reward (sparse on sparse families).
        """
        task_t = to_device(np.asarray(tasks, dtype=np.int64), self.device)
        rows = to_device(np.asarray(rows, dtype=np.int64), self.device)
        x = self._gather(self._flat(task_t, rows), self._context_cols(use_next_obs))
        return x.cpu().numpy()  # (task, n, ctx_dim)

    def sample_context(
        self, tasks: np.ndarray, batch: int, rng: Generator, use_next_obs: bool
    ) -> np.ndarray | torch.Tensor:
        """``batch`` random context transitions per task: ``(len(tasks), batch, ctx_dim)``."""
        tasks = np.asarray(tasks, dtype=np.int64)
        task_t = to_device(tasks, self.device)
        rows = self._rows(tasks, task_t, batch, rng)
        return self._out(
            self._gather(self._flat(task_t, rows), self._context_cols(use_next_obs)), rng
        )

    def sample_sequences(
        self, tasks: np.ndarray, batch: int, rng: Generator, use_next_obs: bool
    ) -> np.ndarray | torch.Tensor:
        """``batch`` context transitions per task in time order, for a recurrent encoder:
        intact episodes of the task drawn uniformly with replacement, concatenated and cut at
        ``batch`` rows (PEARL's ``random_sequence``): ``(len(tasks), batch, ctx_dim)``."""
        tasks = np.asarray(tasks, dtype=np.int64)
        # each task's episodes, a host-side fact: (T, most) indices into the episode table
        members = [np.flatnonzero(self.ep_task == t) for t in tasks]
        if any(len(m) == 0 for m in members):
            empty = [int(t) for t, m in zip(tasks, members) if len(m) == 0]
            raise RuntimeError(f"no intact episodes to sample in tasks {empty}")
        counts = np.array([len(m) for m in members])
        table = np.zeros((len(tasks), counts.max()), dtype=np.int64)
        for i, m in enumerate(members):
            table[i, : len(m)] = m
        k = -(-batch // int(min(self.ep_len[m].min() for m in members)))  # enough episodes
        if isinstance(rng, np.random.Generator):
            u = to_device(rng.random((len(tasks), k)), self.device)
        else:
            u = torch.rand((len(tasks), k), generator=rng, device=self.device, dtype=torch.float64)
        counts_t = to_device(counts, self.device)
        pick = to_device(table, self.device).gather(1, (u * counts_t[:, None]).long())  # (T, k)
        episodes = self._device_index().episodes[pick]  # (T, k, 4)
        length, first = episodes[..., 2], episodes[..., 3]
        ends = length.cumsum(1)  # (T, k): row after each chosen episode, in the sequence
        j = torch.arange(batch, device=self.device).expand(len(tasks), batch).contiguous()
        which = torch.searchsorted(ends, j, right=True)  # (T, batch): the episode of row j
        offset = j - (ends.gather(1, which) - length.gather(1, which))
        flat = first.gather(1, which) + offset  # (T, batch) indices into the storage
        return self._out(self._gather(flat, self._context_cols(use_next_obs)), rng)

    def recent_context(self, task: int, n: int, use_next_obs: bool) -> np.ndarray:
        """The last ``n`` rows written for ``task`` (at most the rows it has): ``(1, m, ctx)``."""
        end = int(self.ptr[task])
        rows = np.arange(max(end - n, 0), end)[None]
        return self.context(np.array([task]), rows, use_next_obs)

    def sample_crops(
        self,
        tasks: np.ndarray,
        n_trajs: int,
        window: int,
        rng: Generator,
        use_next_obs: bool,
    ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """CoCOA's query/key pairs: two random temporal crops of ``window`` steps from each of
        up to ``n_trajs`` distinct intact episodes of ``tasks``.

        Episodes shorter than ``window`` are skipped. Returns ``(query, key, episode)``:
        query and key are ``(N, window, ctx_dim)``, episode is the ``(N,)`` index into the
        episode table (crops ``i`` of query and key come from the same episode).
        """
        tasks = np.asarray(tasks, dtype=np.int64)
        # the eligible episodes are a host-side fact: N needs no device sync
        in_batch = np.zeros(self.n_tasks, dtype=bool)
        in_batch[tasks] = True
        eligible = np.flatnonzero(in_batch[self.ep_task] & (self.ep_len >= window))
        if len(eligible) < 2:
            raise RuntimeError(
                f"need at least 2 episodes of >= {window} steps for contrastive crops, "
                f"found {len(eligible)}"
            )
        n = min(n_trajs, len(eligible))
        if isinstance(rng, np.random.Generator):
            chosen = to_device(rng.choice(eligible, size=n, replace=False), self.device)
            u = to_device(rng.random((2, n)), self.device)
        else:
            # a uniformly random ordered subset of n distinct eligible episodes
            pick = torch.randperm(len(eligible), generator=rng, device=self.device)[:n]
            chosen = to_device(eligible, self.device)[pick]
            u = torch.rand((2, n), generator=rng, device=self.device, dtype=torch.float64)
        episodes = self._device_index().episodes[chosen]  # (N, 4)
        length, first = episodes[:, 2], episodes[:, 3]
        offsets = (u * (length - window + 1)).long()  # (2, N) in [0, valid crop offsets)
        steps = torch.arange(window, device=self.device)
        flat = (first + offsets)[..., None] + steps  # (2, N, w)
        crops = self._gather(flat, self._context_cols(use_next_obs))  # (2, N, w, ctx)
        query, key = self._out(crops, rng)
        return query, key, self._out(chosen, rng)

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """CPU tensors and host arrays (loadable on any device) holding only the rows that
        can be read.

        Each task's filled rows ``[0, filled)`` are concatenated (no padding to the fullest
        task). Every field but the next observations keeps its column block, in float32;
        terminals are stored as booleans when they are all 0 or 1. A next observation is
        stored only where it differs (bit for bit) from the observation of the following
        row, which inside an episode it equals; ``load_state_dict`` rebuilds it exactly.
        """
        filled = self.filled.copy()
        rows = torch.cat([self.storage[t, : int(n)] for t, n in enumerate(filled)]).cpu()
        rows = rows.numpy()  # (sum(filled), width), a copy
        c = self.columns
        obs, nxt = rows[:, c["observations"]], rows[:, c["next_observations"]]
        follows = np.zeros(len(rows), dtype=bool)  # next_obs[r] == obs[r + 1], bitwise
        if len(rows) > 1:
            follows[:-1] = (nxt[:-1].view(np.uint32) == obs[1:].view(np.uint32)).all(axis=1)
        follows[np.cumsum(filled)[filled > 0] - 1] = False  # a task's last row: its own
        stored = np.flatnonzero(~follows)
        terminals = rows[:, c["terminals"]]
        if np.all((terminals == 0) | (terminals == 1)):
            terminals = terminals.astype(bool)
        data = {
            k: np.ascontiguousarray(rows[:, cols])
            for k, cols in c.items()
            if k not in ("next_observations", "terminals")
        }
        data["terminals"] = np.ascontiguousarray(terminals)
        data["next_observations_rows"] = stored
        data["next_observations"] = np.ascontiguousarray(nxt[stored])
        # CPU tensors: torch.save writes their bytes as they are (numpy arrays are pickled
        # about a third larger)
        data = {k: torch.from_numpy(v) for k, v in data.items()}
        return {
            "format": 2,
            "data": data,
            "ptr": self.ptr.copy(),
            "filled": filled,
            "ep_task": self.ep_task.copy(),
            "ep_start": self.ep_start.copy(),
            "ep_len": self.ep_len.copy(),
        }

    @staticmethod
    def empty_state(state: dict[str, Any]) -> dict[str, Any]:
        """``state`` (a ``state_dict``) emptied: no rows, no episodes; what a compacted
        checkpoint keeps of a buffer it no longer needs."""
        out = {k: np.zeros_like(v) for k, v in state.items() if k not in ("data", "format")}
        for k in ("ep_task", "ep_start", "ep_len"):
            out[k] = np.zeros(0, dtype=np.int64)
        out["format"] = 2
        # the format-2 layout built afresh (a format-1 state holds tasks x rows x columns
        # blocks and no next_observations_rows); new tensors, since torch.save writes a
        # view's whole storage
        data = {}
        for k, v in state["data"].items():
            if k == "next_observations_rows":
                continue
            v = torch.as_tensor(v)
            data[k] = torch.zeros((0, v.shape[-1]), dtype=v.dtype)
        data["next_observations_rows"] = torch.zeros(0, dtype=torch.int64)
        out["data"] = data
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        filled = np.asarray(state["filled"], dtype=np.int64)
        data = {
            k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state["data"].items()
        }
        if state.get("format", 1) >= 2:
            top = int(filled.max(initial=0))
        else:  # format 1: every task's rows padded to the fullest task
            top = data["observations"].shape[1]
        self.storage = torch.zeros((self.n_tasks, 0, self.width), device=self.device)
        self._resize(min(self.capacity, max(1024, top)))
        if state.get("format", 1) >= 2:
            obs = data["observations"]
            nxt = np.empty_like(obs)
            nxt[:-1] = obs[1:]
            nxt[data["next_observations_rows"]] = data["next_observations"]
            fields = {k: v for k, v in data.items() if k != "next_observations_rows"}
            fields["next_observations"] = nxt
            rows = np.empty((len(obs), self.width), dtype=np.float32)
            for k, v in fields.items():
                rows[:, self.columns[k]] = v
            rows_t = torch.from_numpy(rows).to(self.device)
            offsets = np.concatenate([[0], np.cumsum(filled)])
            for t in range(self.n_tasks):
                self.storage[t, : filled[t]] = rows_t[offsets[t] : offsets[t + 1]]
        else:
            for k, v in data.items():
                self.storage[:, :top, self.columns[k]] = torch.as_tensor(v).to(self.device)
        self.ptr, self.filled = state["ptr"].copy(), filled.copy()
        self.ep_task, self.ep_start = state["ep_task"].copy(), state["ep_start"].copy()
        self.ep_len = state["ep_len"].copy()
        self._index = None
