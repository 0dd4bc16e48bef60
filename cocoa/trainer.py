"""The meta-training loop shared by every algorithm: iterate, meta-test, log, checkpoint.

``train(cfg, run_dir)`` runs until ``cfg.steps`` env steps were collected. It meta-tests the
untrained agent first (iteration 0), then every ``cfg.eval_interval`` env steps and at the
end; each meta-test is followed by an atomic checkpoint (``checkpoints/latest.pt``) and the
acting networks' weights alone (``checkpoints/policy.pt``). ``resume=True`` restarts from the
last checkpoint and cuts ``progress.csv`` back to the rows that checkpoint had written, so the
resumed run re-creates exactly the rows a run without interruption writes.

One process writes a run at a time (``cocoa.runs.RunLock``). SIGTERM, like SIGINT, stops the
run as an interrupt: ``status.json`` says ``interrupted`` with the last checkpoint's counters.
"""

from __future__ import annotations

import io
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cocoa.envs import TaskFamily
from cocoa.task_samplers import TaskSampler

from .algorithms import get_algorithm
from .config import RunConfig, run_family, to_dict
from .evaluator import EvalProtocol, EvalResult, evaluate, get_protocol
from .runs import (
    ProgressWriter,
    RunInterrupted,
    RunLock,
    TrainingDiverged,
    append_log,
    atomic_write_bytes,
    last_meta_test,
    read_json,
    write_json,
    write_status,
)
from .types import MetaLearner


@dataclass
class Setup:
    """Everything a run needs, built from its config."""

    family: TaskFamily
    sampler: TaskSampler
    protocol: EvalProtocol
    learner: MetaLearner


def build(cfg: RunConfig) -> Setup:
    """Builds family, tasks, protocol and learner for ``cfg``."""
    torch.set_num_threads(cfg.threads)
    family = run_family(cfg)  # the env with the run's reward version
    sampler = TaskSampler(family, cfg.task_seed)
    protocol = get_protocol(cfg.protocol, family)
    spec = get_algorithm(cfg.algo)
    learner = spec.build(
        cfg.algo_config, family, sampler.train_tasks(), torch.device(cfg.device), cfg.seed
    )
    spec.check_workers(cfg.workers)  # a resumed run may ask for other workers
    if cfg.workers > 1:
        learner.set_workers(cfg.workers)
    return Setup(family, sampler, protocol, learner)


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "latest.pt"


def policy_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "policy.pt"


# Entries of a learner's state that acting and adapting need, when the learner has them
ACTING_KEYS = ("policy", "encoder", "nets")


def _is_module_state(value) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def policy_weights(learner_state: dict) -> dict:
    """The weights a learner acts and adapts with: its ``policy``, ``encoder`` or ``nets``
    network state dicts (every network's when it has none of these); no optimiser state, no
    replay buffers, no RNG state."""
    nets = {k: v for k, v in learner_state.items() if _is_module_state(v)}
    return {k: nets[k] for k in ACTING_KEYS if k in nets} or nets


def _is_buffer_state(value) -> bool:
    return isinstance(value, dict) and {"data", "ptr", "filled", "ep_task"} <= set(value)


def save_checkpoint(
    run_dir: Path,
    learner: MetaLearner,
    trainer_state: dict,
    on_written: Callable[[], None] | None = None,
) -> None:
    """Atomically writes networks, optimisers, buffers, RNG states and counters, then the
    acting weights alone (``policy.pt``). ``on_written()`` is called as soon as
    ``latest.pt`` is in place, before ``policy.pt`` is written."""
    state = learner.state_dict()
    buf = io.BytesIO()
    torch.save({"learner": state, "trainer": dict(trainer_state)}, buf)
    atomic_write_bytes(checkpoint_path(run_dir), buf.getvalue())
    if on_written is not None:
        on_written()
    write_policy(run_dir, state, trainer_state)


def write_policy(run_dir: Path, learner_state: dict, trainer_state: dict) -> None:
    """``checkpoints/policy.pt``: ``{"weights": policy_weights(...), "env_steps",
    "iteration"}``."""
    buf = io.BytesIO()
    torch.save(
        {
            "weights": policy_weights(learner_state),
            "env_steps": int(learner_state.get("env_steps", 0)),
            "iteration": int(trainer_state.get("iteration", 0)),
        },
        buf,
    )
    atomic_write_bytes(policy_path(run_dir), buf.getvalue())


def load_checkpoint(run_dir: Path) -> dict:
    """Reads the last checkpoint; ``ValueError`` if it is missing or unreadable."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        raise ValueError(f"{run_dir} has no checkpoint to resume from ({path} is missing)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001  (a corrupt file of any kind is one message)
        raise ValueError(f"corrupt checkpoint {path}: {exc}") from None


def compact(run_dir: Path) -> tuple[int, int]:
    """Drops the replay buffers from a finished run's checkpoint (meta-test still works;
    resuming no longer does) and returns its size in bytes before and after.

    ``ValueError`` unless the run is finished; ``RunLocked`` while another process writes
    it.
    """
    from cocoa.buffers import MultiTaskReplayBuffer
    from cocoa.runs import read_status

    run_dir = Path(run_dir)
    with RunLock(run_dir):
        record = read_status(run_dir)
        status = record.get("status")
        if status != "finished":
            raise ValueError(
                f"{run_dir} is {status}, not finished; only a finished run can drop its "
                "replay buffers (resume it to the end first)"
            )
        path = checkpoint_path(run_dir)
        before = path.stat().st_size if path.exists() else 0
        ckpt = load_checkpoint(run_dir)
        learner = ckpt["learner"]
        for key, value in learner.items():
            if _is_buffer_state(value):
                learner[key] = MultiTaskReplayBuffer.empty_state(value)
        ckpt["trainer"]["compacted"] = True
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        atomic_write_bytes(path, buf.getvalue())
        if not policy_path(run_dir).exists():
            write_policy(run_dir, learner, ckpt["trainer"])
        # a sweep with a larger budget skips it instead of failing to resume it
        keep = {k: v for k, v in record.items() if k not in ("status", "time", "compacted")}
        write_status(run_dir, "finished", **keep, compacted=True)
        _log(run_dir, f"compacted: checkpoint {before:,} -> {path.stat().st_size:,} bytes")
        return before, path.stat().st_size


# a run whose remaining time, measured at its first steady iteration, passes this is warned
LONG_RUN_S = 3 * 24 * 3600.0


def _duration(seconds: float) -> str:
    if seconds >= 2 * 24 * 3600:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes"


_log = append_log


class _Sigterm:
    """While active, SIGTERM raises ``KeyboardInterrupt`` in the main thread, as SIGINT
    does (schedulers stop jobs with SIGTERM). ``received`` says whether SIGTERM came.
    Inside ``held()`` either signal only sets a flag, and the interrupt is raised when the
    block ends (a checkpoint and the status describing it are written whole)."""

    def __init__(self):
        self.received = False
        self._previous: dict = {}
        self._holding = 0
        self._pending = False

    def _handler(self, signum, frame):
        if signum == signal.SIGTERM:
            self.received = True
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interrupt; cleanup in peace
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def held(self):
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending:
            self._pending = False
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                    continue  # SIGINT ignored or handled elsewhere: left so
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def train(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
    on_resume: Callable[[int, int], None] | None = None,
) -> EvalResult | None:
    """Meta-trains ``cfg`` into ``run_dir``; returns the last meta-test result, or None when
    a resumed run had nothing left to do (its budget was already reached).

    Holds the run's lock throughout (``RunLocked`` when another process has it). SIGINT and
    SIGTERM mark the run ``interrupted`` and raise ``RunInterrupted``. ``on_resume(iteration,
    env_steps)`` is called once a resumed run's checkpoint is loaded.
    """
    run_dir = Path(run_dir)
    lock = RunLock(run_dir)
    took_over = lock.acquire()
    try:
        if took_over:
            _log(run_dir, took_over)
        with _Sigterm() as sigterm:
            try:
                return _train(cfg, run_dir, resume, progress, sigterm, on_resume)
            except KeyboardInterrupt:
                raise RunInterrupted(run_dir, "SIGTERM" if sigterm.received else "SIGINT") from None
    finally:
        lock.release()


def _train(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    sigterm: _Sigterm,
    on_resume: Callable[[int, int], None] | None,
) -> EvalResult | None:
    setup = build(cfg)
    learner, family = setup.learner, setup.family
    test_tasks = setup.sampler.test_tasks()
    writer = ProgressWriter(run_dir / "progress.csv")
    state = {"iteration": 0, "wall_time_s": 0.0, "next_eval": 0, "rows": 0}
    if resume:
        ckpt = load_checkpoint(run_dir)
        if ckpt["trainer"].get("compacted"):
            raise ValueError(
                f"{run_dir} was compacted (its replay buffers were dropped), so it cannot "
                "resume; `cocoa meta-test` still evaluates it"
            )
        learner.load_state_dict(ckpt["learner"])
        state = ckpt["trainer"]
        if learner.env_steps >= cfg.steps and state["rows"] > 0:
            # nothing to train: the run and its status stay as they are
            _log(
                run_dir,
                f"resume to {cfg.steps} env steps: nothing to do, the run is at "
                f"{learner.env_steps} env steps",
            )
            return None
        writer.truncate(state["rows"])
        if learner.env_steps < cfg.steps:
            resolved = json.loads(json.dumps(to_dict(cfg)))
            if (
                read_json(run_dir / "config.json") != resolved
            ):  # a larger budget or other workers: the run's config
                write_json(run_dir / "config.json", to_dict(cfg))
        _log(run_dir, f"resumed at iteration {state['iteration']}, {learner.env_steps} env steps")
        if on_resume is not None:
            on_resume(state["iteration"], learner.env_steps)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", to_dict(cfg))
        _log(run_dir, f"started {cfg.algo} on {cfg.env} (seed {cfg.seed}, {cfg.device})")
    # what the last checkpoint holds: status.json never claims more
    saved = {
        "iteration": state["iteration"],
        "env_steps": learner.env_steps,
        "last_eval_step": state.get("last_eval_step"),
    }

    eval_cols = ["meta_test/return"] + (["meta_test/success"] if family.has_success else [])
    columns = ["iteration", "env_steps", "wall_time_s", *eval_cols, *learner.metric_names]
    start = time.monotonic() - state["wall_time_s"]
    last: EvalResult | None = None

    def meta_test(row: dict) -> None:
        nonlocal last
        last = evaluate(learner, family, test_tasks, setup.protocol, seed=cfg.seed)
        row.update(last.metrics())
        write_json(
            run_dir / "evals" / f"{state['iteration']:06d}.json",
            {
                "iteration": state["iteration"],
                "env_steps": learner.env_steps,
                "protocol": setup.protocol.name,
                **last.summary(),
                "tasks": last.records(),
            },
        )
        state["last_eval_step"] = learner.env_steps
        while state["next_eval"] <= learner.env_steps:
            state["next_eval"] += cfg.eval_interval

    def mark_saved() -> None:  # latest.pt now holds these counters
        saved.update(
            iteration=state["iteration"],
            env_steps=learner.env_steps,
            last_eval_step=state.get("last_eval_step"),
        )

    def commit(row: dict, checkpoint: bool) -> None:
        with sigterm.held():  # an interrupt waits until the row, checkpoint and status agree
            state["wall_time_s"] = time.monotonic() - start
            row["wall_time_s"] = round(state["wall_time_s"], 3)
            writer.write(row, columns)
            state["rows"] += 1
            if checkpoint:
                save_checkpoint(run_dir, learner, state, on_written=mark_saved)
                write_status(run_dir, "running", **saved)

    def postfix(metrics: dict | None) -> dict | None:
        if metrics is None:
            return None
        post = {"it": state["iteration"], "return": f"{metrics['return']:.1f}"}
        if family.has_success and metrics.get("success") is not None:
            post["success"] = f"{metrics['success']:.2f}"
        return post

    bar = None
    warned = False
    try:
        write_status(run_dir, "running", **saved)
        bar = tqdm(
            total=max(cfg.steps, learner.env_steps),
            initial=learner.env_steps,
            unit="step",
            desc=f"{cfg.algo} {cfg.env} s{cfg.seed}",
            disable=not progress,
            dynamic_ncols=True,
            # a resumed run shows its last meta-test's numbers from the start
            postfix=postfix(last_meta_test(run_dir, state["rows"])) if resume else None,
        )
        if state["rows"] == 0:  # the untrained agent: every curve starts at 0 env steps
            row = {"iteration": 0, "env_steps": 0}
            meta_test(row)
            commit(row, checkpoint=True)
        while learner.env_steps < cfg.steps:
            before, tick = learner.env_steps, time.monotonic()
            metrics = learner.train_iteration()
            state["iteration"] += 1
            bad = [k for k, v in metrics.items() if v is not None and not math.isfinite(v)]
            if bad:
                raise TrainingDiverged(
                    f"{', '.join(bad)} became non-finite at iteration {state['iteration']}; "
                    f"the last good checkpoint is {checkpoint_path(run_dir)}"
                )
            row = {"iteration": state["iteration"], "env_steps": learner.env_steps, **metrics}
            evaluating = learner.env_steps >= state["next_eval"] or learner.env_steps >= cfg.steps
            if evaluating:
                meta_test(row)
            commit(row, checkpoint=evaluating)
            if learner.env_steps > bar.total:  # the true count, past the budget if need be
                bar.total = learner.env_steps
            bar.update(learner.env_steps - before)
            if state["iteration"] >= 2 and not warned:  # a steady iteration: time the rest
                warned = True
                pace = (learner.env_steps - before) / max(time.monotonic() - tick, 1e-9)
                eta = (cfg.steps - learner.env_steps) / pace
                if eta > LONG_RUN_S:
                    message = (
                        f"warning: at this pace ({pace:,.0f} env steps/s) the budget of "
                        f"{cfg.steps:,} env steps needs about {_duration(eta)} more"
                    )
                    _log(run_dir, message)
                    if progress:
                        bar.write(message, file=sys.stderr)
            if last is not None:
                post = postfix({"return": last.mean_return, "success": last.success_rate})
                bar.set_postfix(post, refresh=True)
    except TrainingDiverged as exc:
        write_status(run_dir, "diverged", error=str(exc), **saved)
        _log(run_dir, f"diverged: {exc}")
        raise
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted", **saved)
        _log(
            run_dir,
            f"interrupted by {'SIGTERM' if sigterm.received else 'SIGINT'}; the last "
            f"checkpoint holds iteration {saved['iteration']}, {saved['env_steps']} env steps",
        )
        raise
    except Exception as exc:
        write_status(run_dir, "failed", error=f"{type(exc).__name__}: {exc}", **saved)
        _log(run_dir, f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if bar is not None:
            bar.close()
    write_status(run_dir, "finished", **saved)
    _log(run_dir, f"finished at {learner.env_steps} env steps")
    return last
