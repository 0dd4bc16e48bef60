"""The meta-training loop shared by every algorithm: iterate, meta-test, log, checkpoint.

``train(cfg, run_dir)`` runs until ``cfg.steps`` env steps were collected. It meta-tests the
untrained agent first (iteration 0), then every ``cfg.eval_interval`` env steps and at the
end; each meta-test is followed by an atomic checkpoint. ``resume=True`` restarts from the
last checkpoint and cuts ``progress.csv`` back to the rows that checkpoint had written, so the
resumed run re-creates exactly the rows a run without interruption writes.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cocoa.envs import TaskFamily, get_family
from cocoa.task_samplers import TaskSampler

from .algorithms import get_algorithm
from .config import RunConfig, to_dict
from .evaluator import EvalProtocol, EvalResult, evaluate, get_protocol
from .runs import ProgressWriter, TrainingDiverged, atomic_write_bytes, write_json, write_status
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
    family = get_family(cfg.env)
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


def save_checkpoint(run_dir: Path, learner: MetaLearner, trainer_state: dict) -> None:
    """Atomically writes networks, optimisers, buffers, RNG states and counters."""
    buf = io.BytesIO()
    torch.save({"learner": learner.state_dict(), "trainer": dict(trainer_state)}, buf)
    atomic_write_bytes(checkpoint_path(run_dir), buf.getvalue())


def load_checkpoint(run_dir: Path) -> dict:
    """Reads the last checkpoint; ``ValueError`` if it is missing or unreadable."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        raise ValueError(f"{run_dir} has no checkpoint to resume from ({path} is missing)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001  (a corrupt file of any kind is one message)
        raise ValueError(f"corrupt checkpoint {path}: {exc}") from None


def _log(run_dir: Path, message: str) -> None:
    with (Path(run_dir) / "log.txt").open("a") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def train(
    cfg: RunConfig, run_dir: Path, resume: bool = False, progress: bool = True
) -> EvalResult | None:
    """Meta-trains ``cfg`` into ``run_dir``; returns the last meta-test result, or None when
    a resumed run had nothing left to do (its budget was already reached)."""
    run_dir = Path(run_dir)
    setup = build(cfg)
    learner, family = setup.learner, setup.family
    test_tasks = setup.sampler.test_tasks()
    writer = ProgressWriter(run_dir / "progress.csv")
    state = {"iteration": 0, "wall_time_s": 0.0, "next_eval": 0, "rows": 0}
    if resume:
        ckpt = load_checkpoint(run_dir)
        learner.load_state_dict(ckpt["learner"])
        state = ckpt["trainer"]
        writer.truncate(state["rows"])
        _log(run_dir, f"resumed at iteration {state['iteration']}, {learner.env_steps} env steps")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", to_dict(cfg))
        _log(run_dir, f"started {cfg.algo} on {cfg.env} (seed {cfg.seed}, {cfg.device})")
    write_status(run_dir, "running", env_steps=learner.env_steps, iteration=state["iteration"])

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
                "tasks": last.records(),
            },
        )
        while state["next_eval"] <= learner.env_steps:
            state["next_eval"] += cfg.eval_interval

    def commit(row: dict, checkpoint: bool) -> None:
        state["wall_time_s"] = time.monotonic() - start
        row["wall_time_s"] = round(state["wall_time_s"], 3)
        writer.write(row, columns)
        state["rows"] += 1
        if checkpoint:
            save_checkpoint(run_dir, learner, state)
            write_status(
                run_dir, "running", env_steps=learner.env_steps, iteration=state["iteration"]
            )

    bar = tqdm(
        total=cfg.steps,
        initial=min(learner.env_steps, cfg.steps),
        unit="step",
        desc=f"{cfg.algo} {cfg.env} s{cfg.seed}",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        if state["rows"] == 0:  # the untrained agent: every curve starts at 0 env steps
            row = {"iteration": 0, "env_steps": 0}
            meta_test(row)
            commit(row, checkpoint=True)
        while learner.env_steps < cfg.steps:
            before = learner.env_steps
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
            bar.update(min(learner.env_steps, cfg.steps) - min(before, cfg.steps))
            if last is not None:
                post = {"it": state["iteration"], "return": f"{last.mean_return:.1f}"}
                if family.has_success:
                    post["success"] = f"{last.success_rate:.2f}"
                bar.set_postfix(post, refresh=False)
    except TrainingDiverged as exc:
        write_status(run_dir, "diverged", error=str(exc), iteration=state["iteration"])
        _log(run_dir, f"diverged: {exc}")
        raise
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted", iteration=state["iteration"])
        _log(run_dir, "interrupted")
        raise
    except Exception as exc:
        write_status(
            run_dir, "failed", error=f"{type(exc).__name__}: {exc}", iteration=state["iteration"]
        )
        _log(run_dir, f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        bar.close()
    write_status(run_dir, "finished", env_steps=learner.env_steps, iteration=state["iteration"])
    _log(run_dir, f"finished at {learner.env_steps} env steps")
    return last
