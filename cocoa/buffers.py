"""Replay storage for off-policy meta-RL: one FIFO buffer per task, sampled as (task, batch, ·).

``MultiTaskReplayBuffer`` keeps every field as one ``(n_tasks, rows, feat)`` array, so a batch
for a meta-batch of tasks is a single fancy-index (no Python loop over tasks). Episodes are
written contiguously (the write pointer wraps to row 0 before an episode that would not fit),
so a temporal crop of an intact episode is a contiguous row range: ``sample_crops`` draws
CoCOA's query/key windows from it. Storage grows by doubling up to ``capacity`` rows per task.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .types import Episode


class TransitionBatch(NamedTuple):
    """Transitions for a meta-batch of tasks; every field is ``(task, batch, ·)`` float32."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray  # (task, batch, 1) dense RL reward
    next_observations: np.ndarray
    terminals: np.ndarray  # (task, batch, 1)


_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "context_rewards",
    "next_observations",
    "terminals",
)


class MultiTaskReplayBuffer:
    """Per-task FIFO replay buffers with episode bookkeeping.

    Args:
        n_tasks: number of tasks (buffer index = task index in the training list).
        capacity: rows per task at most.
        obs_dim, act_dim: transition sizes.
    """

    def __init__(self, n_tasks: int, capacity: int, obs_dim: int, act_dim: int):
        self.n_tasks, self.capacity = int(n_tasks), int(capacity)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self._alloc = 0
        self.data: dict[str, np.ndarray] = {}
        self._resize(min(self.capacity, 1024))
        self.ptr = np.zeros(n_tasks, dtype=np.int64)  # next write row
        self.filled = np.zeros(n_tasks, dtype=np.int64)  # rows [0, filled) hold data
        # the episode table: one entry per intact episode, over all tasks
        self.ep_task = np.zeros(0, dtype=np.int64)
        self.ep_start = np.zeros(0, dtype=np.int64)
        self.ep_len = np.zeros(0, dtype=np.int64)

    # ---------------------------------------------------------------- storage

    def _widths(self) -> dict[str, int]:
        o, a = self.obs_dim, self.act_dim
        return {
            "observations": o,
            "actions": a,
            "rewards": 1,
            "context_rewards": 1,
            "next_observations": o,
            "terminals": 1,
        }

    def _resize(self, rows: int) -> None:
        new = {}
        for name, width in self._widths().items():
            arr = np.zeros((self.n_tasks, rows, width), dtype=np.float32)
            if name in self.data:
                arr[:, : self._alloc] = self.data[name]
            new[name] = arr
        self.data, self._alloc = new, rows

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
        while end > self._alloc:
            self._resize(min(self.capacity, 2 * self._alloc))
        # entries whose first row is overwritten are no longer intact episodes
        hit = (self.ep_task == task) & (self.ep_start >= start) & (self.ep_start < end)
        if hit.any():
            keep = ~hit
            self.ep_task, self.ep_start, self.ep_len = (
                self.ep_task[keep],
                self.ep_start[keep],
                self.ep_len[keep],
            )
        values = {
            "observations": episode.observations,
            "actions": episode.actions,
            "rewards": episode.rewards[:, None],
            "context_rewards": episode.context_rewards[:, None],
            "next_observations": episode.next_observations,
            "terminals": episode.terminals[:, None],
        }
        for name, value in values.items():
            self.data[name][task, start:end] = value
        self.ptr[task] = end
        self.filled[task] = max(self.filled[task], end)
        self.ep_task = np.append(self.ep_task, task)
        self.ep_start = np.append(self.ep_start, start)
        self.ep_len = np.append(self.ep_len, n)

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

    # --------------------------------------------------------------- sampling

    def _rows(self, tasks: np.ndarray, batch: int, rng: np.random.Generator) -> np.ndarray:
        sizes = self.filled[tasks]
        if np.any(sizes == 0):
            empty = tasks[sizes == 0]
            raise RuntimeError(f"sampling from empty buffers of tasks {empty.tolist()}")
        # uniform rows in [0, size) per task: (task, batch)
        return np.floor(rng.random((len(tasks), batch)) * sizes[:, None]).astype(np.int64)

    def sample(self, tasks: np.ndarray, batch: int, rng: np.random.Generator) -> TransitionBatch:
        """Uniform transitions of each task in ``tasks``; fields ``(len(tasks), batch, ·)``."""
        tasks = np.asarray(tasks, dtype=np.int64)
        rows = self._rows(tasks, batch, rng)
        t = tasks[:, None]
        d = self.data
        return TransitionBatch(
            d["observations"][t, rows],
            d["actions"][t, rows],
            d["rewards"][t, rows],
            d["next_observations"][t, rows],
            d["terminals"][t, rows],
        )

    def context(self, tasks: np.ndarray, rows: np.ndarray, use_next_obs: bool) -> np.ndarray:
        """Context transitions (s, a, r[, s']) at ``rows`` (shape (task, n)) of ``tasks``.

        The reward is the context reward (sparse on sparse families).
        """
        t = np.asarray(tasks, dtype=np.int64)[:, None]
        d = self.data
        parts = [d["observations"][t, rows], d["actions"][t, rows], d["context_rewards"][t, rows]]
        if use_next_obs:
            parts.append(d["next_observations"][t, rows])
        return np.concatenate(parts, axis=-1)  # (task, n, ctx_dim)

    def sample_context(
        self, tasks: np.ndarray, batch: int, rng: np.random.Generator, use_next_obs: bool
    ) -> np.ndarray:
        """``batch`` random context transitions per task: ``(len(tasks), batch, ctx_dim)``."""
        tasks = np.asarray(tasks, dtype=np.int64)
        return self.context(tasks, self._rows(tasks, batch, rng), use_next_obs)

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
        rng: np.random.Generator,
        use_next_obs: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CoCOA's query/key pairs: two random temporal crops of ``window`` steps from each of
        up to ``n_trajs`` distinct intact episodes of ``tasks``.

        Episodes shorter than ``window`` are skipped. Returns ``(query, key, episode)``:
        query and key are ``(N, window, ctx_dim)``, episode is the ``(N,)`` index into the
        episode table (crops ``i`` of query and key come from the same episode).
        """
        candidates = np.flatnonzero(np.isin(self.ep_task, tasks) & (self.ep_len >= window))
        if len(candidates) < 2:
            raise RuntimeError(
                f"need at least 2 episodes of >= {window} steps for contrastive crops, "
                f"found {len(candidates)}"
            )
        chosen = rng.choice(candidates, size=min(n_trajs, len(candidates)), replace=False)
        task, start, length = self.ep_task[chosen], self.ep_start[chosen], self.ep_len[chosen]
        span = length - window + 1  # valid crop offsets per episode
        offsets = np.floor(rng.random((2, len(chosen))) * span).astype(np.int64)  # (2, N)
        rows = start[None, :, None] + offsets[..., None] + np.arange(window)  # (2, N, w)
        q = self.context(task, rows[0], use_next_obs)
        k = self.context(task, rows[1], use_next_obs)
        return q, k, chosen

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        top = int(self.filled.max(initial=0))
        return {
            "data": {k: v[:, :top].copy() for k, v in self.data.items()},
            "ptr": self.ptr.copy(),
            "filled": self.filled.copy(),
            "ep_task": self.ep_task.copy(),
            "ep_start": self.ep_start.copy(),
            "ep_len": self.ep_len.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        top = state["data"]["observations"].shape[1]
        self._alloc = 0
        self.data = {}
        rows = min(self.capacity, max(1024, top))
        self._resize(rows)
        for k, v in state["data"].items():
            self.data[k][:, :top] = v
        self.ptr, self.filled = state["ptr"].copy(), state["filled"].copy()
        self.ep_task, self.ep_start = state["ep_task"].copy(), state["ep_start"].copy()
        self.ep_len = state["ep_len"].copy()
