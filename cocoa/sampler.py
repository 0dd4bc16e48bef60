"""Episode collection in worker processes, one whole job per round trip.

A *job* is a picklable value handed to a picklable top-level function ``fn(env, shared, job)``
that runs whole episodes on the worker's own env and returns them. ``Sampler.run`` ships
``shared`` (the policy's weights) once per call to every worker, then deals out jobs as workers
become free and returns the results in job order.

Why this shape: stepping envs in lockstep across processes (gymnasium's ``AsyncVectorEnv``)
pays an inter-process round trip per env step, which costs as much as a Metaworld step; a job
of whole episodes pays one round trip per job, and the policy runs inside the worker (in numpy,
see ``cocoa.np_nets``).

Results do not depend on the number of workers: each job carries its own seed and its result
depends on nothing else, so one worker, four workers, or the in-process path (``workers=1``)
collect identical data.

Workers are started once (spawned, so they never inherit torch's threads) and live until
``close`` or until the sampler is garbage-collected; they ignore Ctrl-C (the parent handles it)
and exit when the parent's pipe closes. This module imports no torch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from cocoa.envs import TaskEnv, TaskFamily, get_family
from cocoa.envs.metaworld_families import with_reward_version

JobFn = Callable[[TaskEnv, Any, Any], Any]

# BLAS/OpenMP pools in a worker would only fight the other workers for the cores
_SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _worker(family_name: str, conn: Connection, reward_version: str | None = None) -> None:
    """A worker's loop: ``("shared", value)`` stores the shared value, ``("job", i, fn, job)``
    runs one job and answers ``(i, ok, result or traceback)``, ``None`` stops.
    ``reward_version``: the family's Metaworld reward version (None: the family has none)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    family = get_family(family_name)
    if reward_version is not None:
        family = with_reward_version(family, reward_version)
    env = family.make_env()
    shared: Any = None
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent is gone
            break
        if msg is None:
            break
        if msg[0] == "shared":
            shared = msg[1]
            continue
        _, index, fn, job = msg
        try:
            conn.send((index, True, fn(env, shared, job)))
        except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
            conn.send((index, False, traceback.format_exc()))
    env.close()


def _shutdown(procs: list[mp.process.BaseProcess], conns: list[Connection]) -> None:
    for conn in conns:
        try:
            conn.send(None)
            conn.close()
        except (OSError, BrokenPipeError):
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


class Sampler:
    """Runs collection jobs on ``family``'s envs, in process or on ``workers`` processes.

    Args:
        family: the task family; each worker builds one env of it (``family.make_env()``).
        workers: 1 runs jobs in this process (no IPC at all); N > 1 starts N processes.
    """

    def __init__(self, family: TaskFamily, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.family, self.workers = family, int(workers)
        self._env: TaskEnv | None = None
        self._procs: list[mp.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._finalizer: weakref.finalize | None = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        saved = {k: os.environ.get(k) for k in _SINGLE_THREAD_ENV}
        os.environ.update(_SINGLE_THREAD_ENV)  # inherited by the spawned interpreters
        try:
            for _ in range(self.workers):
                parent, child = ctx.Pipe()
                version = getattr(self.family, "reward_version", None)
                proc = ctx.Process(
                    target=_worker, args=(self.family.name, child, version), daemon=True
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns)

    def run(self, fn: JobFn, shared: Any, jobs: Sequence[Any]) -> list[Any]:
        """``[fn(env, shared, job) for job in jobs]``, spread over the workers."""
        if self.workers == 1:
            if self._env is None:
                self._env = self.family.make_env()
            return [fn(self._env, shared, job) for job in jobs]
        if not self._procs:
            self._start()
        for conn in self._conns:  # the weights travel once per call, not once per job
            conn.send(("shared", shared))
        results: list[Any] = [None] * len(jobs)
        pending = iter(enumerate(jobs))
        busy: dict[Connection, int] = {}

        def feed(conn: Connection) -> None:
            item = next(pending, None)
            if item is not None:
                conn.send(("job", item[0], fn, item[1]))
                busy[conn] = item[0]

        for conn in self._conns:
            feed(conn)
        while busy:
            for conn in wait(list(busy)):
                try:
                    index, ok, value = conn.recv()
                except EOFError:
                    self.close()
                    raise RuntimeError("a sampler worker died") from None
                del busy[conn]
                if not ok:
                    self.close()
                    raise RuntimeError(f"a sampler worker failed:\n{value}")
                results[index] = value
                feed(conn)
        return results

    def close(self) -> None:
        """Stops the workers (a later ``run`` starts new ones)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._procs, self._conns = [], []
        if self._env is not None:
            self._env.close()
            self._env = None
