"""Sweeps: a grid of runs (algorithms x envs x seeds [x objectives x augmentations x
similarities]) executed in parallel local processes or as Ray tasks, each writing its own run
directory.

Run directories are deterministic, ``<out>/<env>/<algo>/<name>`` with ``name`` = ``seed<k>``,
or prefixed by the choices that took effect on the run: ``<objective>-`` (``--objective(s)``),
``aug-<a>[+<b>]-`` (``--augment(s)``), ``augctx-`` (``--augment-context``) and
``<similarity>-`` (``--similarities``), in that order (``masked-aug-noise-bilinear-seed3``), so
a relaunched sweep finds its runs again and decides per run (``plan``):

* another live process holds the run's lock (``cocoa.runs.RunLock``) → leave it alone and
  report it ``busy``;
* ``status.json`` says ``finished`` → skip, unless the sweep's ``--steps`` is larger than
  the env steps the run reached: then resume it to the new budget (a compacted run, whose
  replay buffers were dropped, cannot be: it is skipped with a note saying so);
* ``diverged`` → skip and report it (resuming would diverge again from the same checkpoint;
  delete the directory to rerun it);
* a checkpoint exists (the run was killed, interrupted or failed after its first meta-test)
  → ``train(..., resume=True)``;
* otherwise → start fresh (a half-written directory without a checkpoint is removed first).

An existing run whose ``config.json`` differs from the one the sweep would write (other than
in a larger budget, ``steps``) stops the sweep before anything runs (it would otherwise be
skipped or resumed under the wrong config); a smaller budget counts as another config for a
run that is not finished (it would cut the run short) and skips a finished one.

A run that raises records its traceback in ``<run_dir>/error.txt`` and ``status.json``
(status ``failed``, or ``diverged`` as the trainer wrote it, with ``error``); the other runs go
on. Two sweeps must not work on the same ``--out`` at the same time.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import product
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from cocoa.runs import (
    LOCK_FILE,
    RunLock,
    RunLocked,
    append_log,
    lock_holder,
    read_json,
    read_status,
    run_dir_for,
    write_status,
)

# The trainer's checkpoint inside a run directory (layout in ``cocoa.runs``).
CHECKPOINT = Path("checkpoints") / "latest.pt"
# Algorithms for which ``--similarities`` is a grid dimension; the others run once per seed.
SIMILARITY_ALGOS = ("cocoa",)

TrainFn = Callable[..., Any]


# --------------------------------------------------------------------------------- grid


def parse_list(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b, c"`` → ``["a", "b", "c"]`` (empty items dropped; duplicates removed)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) or a mix → sorted unique non-negative ints."""
    seeds: list[int] = []
    for item in parse_list(text):
        try:
            if "-" in item:
                lo, hi = (int(x) for x in item.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds += range(lo, hi + 1)
            else:
                seeds.append(int(item))
        except ValueError:
            raise ValueError(f"bad seed list {text!r}; use e.g. 0,1,2 or 0-4") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"bad seed list {text!r}; seeds are integers >= 0")
    return sorted(set(seeds))


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["algo_config.kl_lambda=0.2", "steps=5000"]`` → nested override dict.

    Values are read as JSON when they parse (numbers, true/false, lists, quoted strings),
    otherwise taken as plain strings.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad --set {item!r}; use KEY=VALUE, e.g. algo_config.kl_lambda=0.2")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r} conflicts with another --set")
        node[parts[-1]] = value
    return out


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated recursively by ``extra`` (extra wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


def run_name(seed: int, similarity: str | None = None, variant: str | None = None) -> str:
    """Deterministic run name: ``seed3``, or ``bilinear-seed3`` in a similarity sweep, prefixed
    by the ``variant`` of the context objective's choices (``masked-aug-noise-seed3``)."""
    return "-".join(part for part in (variant, similarity, f"seed{seed}") if part)


def variant_name(algo_config: Any, objective: str | None, augment: str | None, ctx: bool) -> str:
    """The part of a run name that says which of ``--objective``, ``--augment`` and
    ``--augment-context`` took effect in ``algo_config`` ('' when none did)."""
    from cocoa.objectives import parse_augment

    parts = []
    if objective is not None and getattr(algo_config, "objective", None) == objective:
        parts.append(objective)
    # augmentations act with a context objective or RAD's switch (not in PEARL alone, whose
    # unused default can equal the value)
    acts = getattr(algo_config, "augment_context", False) or (
        getattr(algo_config, "contrastive_weight", 0) > 0
        and getattr(algo_config, "objective", "none") != "none"
    )
    if augment is not None and acts and algo_config.augment == parse_augment(augment):
        parts.append("aug-" + "+".join(parse_augment(augment)))
    if ctx and getattr(algo_config, "augment_context", False):
        parts.append("augctx")
    return "-".join(parts)


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes:
        env, algo, seed, similarity: the grid point (``similarity`` None: the preset's).
        run_dir: ``<out>/<env>/<algo>/<name>``.
        config: the resolved ``RunConfig`` as a JSON-ready dict (what ``config.json`` holds).
        objective, augment: the grid point's ``--objectives`` and ``--augments`` values that
            took effect on the run (augment ``+``-joined); None: the preset's (or the
            objective's default augmentations).
    """

    env: str
    algo: str
    seed: int
    similarity: str | None
    run_dir: Path
    config: dict[str, Any] = field(repr=False, compare=False)
    objective: str | None = None
    augment: str | None = None

    @property
    def label(self) -> str:
        """``algo/env/name`` for messages."""
        return f"{self.algo}/{self.env}/{self.run_dir.name}"


def expand_grid(
    *,
    algos: Sequence[str],
    envs: Sequence[str],
    seeds: Sequence[int],
    out: str | Path,
    steps: int | None,
    preset: str,
    protocol: str,
    device: str,
    similarities: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    worker_device: str | None = None,
    reward_version: str = "v2",
    objective: str | None = None,
    augment: str | None = None,
    augment_context: bool = False,
    objectives: Sequence[str] | None = None,
    augments: Sequence[str] | None = None,
) -> list[SweepRun]:
    """Every run of the grid with its resolved config, in a stable order (env, algo,
    objective, augment, similarity, seed). Every config is built and validated here, so a bad
    name or value stops the sweep before anything runs (``ValueError``, one line).

    ``device`` is resolved on this machine. ``worker_device="cuda"`` is for Ray clusters
    whose workers have GPUs this machine lacks: configs are built for the CPU, then their
    device is set to ``cuda`` (and ``preset="auto"`` means ``paper``).

    ``reward_version``: Metaworld's reward function of every run (``v1`` on a grid with a
    non-Metaworld env is refused).

    ``objective``, ``augment``, ``augment_context``: meta-train's flags, applied to the runs
    of the algorithms they apply to (``cocoa.objectives.contrastive_choices``; one that applies
    to no algorithm of the grid is a ``ValueError``); those runs' names start with them.

    ``objectives``, ``augments``: grid dimensions, several values of ``objective`` and
    ``augment`` (an augment value chains names with ``+`` or ``,``: ``crop+noise``). A value
    that does not apply to an algorithm (an objective for PEARL) leaves that algorithm's runs
    as they are, once, not once per value. One value is the same as the single flag, with the
    same run names.
    """
    from cocoa.algorithms import check_budget, get_algorithm
    from cocoa.config import make_run_config, to_dict
    from cocoa.objectives import contrastive_choices

    if not algos or not envs or not seeds:
        raise ValueError("a sweep needs at least one algorithm, env and seed")
    for algo in algos:
        get_algorithm(algo)  # unknown algorithm: one clear line before anything else
    sims = list(similarities or [])
    if sims and not any(a in SIMILARITY_ALGOS for a in algos):
        raise ValueError(
            f"--similarities applies to {', '.join(SIMILARITY_ALGOS)}; none in --algos"
        )
    objective_values = _axis_values("objective", objective, objectives)
    augment_values = [
        None if a is None else ",".join(parse_list(a.replace("+", ",")))
        for a in _axis_values("augment", augment, augments)
    ]
    if worker_device is not None:
        device = "cpu"
        if preset == "auto":
            preset = "paper" if worker_device == "cuda" else "quick"
    runs: list[tuple[int, int, SweepRun]] = []  # (env index, algo index, run)
    seen: dict[Path, SweepRun] = {}  # a value that does not apply repeats the same run
    for obj, aug in product(objective_values, augment_values):
        choices = dict(objective=obj, augment=aug, augment_context=augment_context)
        applied, unapplied = False, None  # a choice took effect; a config, to say why not
        for (i, env), (j, algo) in product(enumerate(envs), enumerate(algos)):
            sim_values = (sims or [None]) if algo in SIMILARITY_ALGOS else [None]
            for sim, seed in product(sim_values, seeds):
                cfg = make_run_config(
                    env=env,
                    algo=algo,
                    seed=seed,
                    steps=steps,
                    preset=preset,
                    protocol=protocol,
                    device=device,
                    similarity=sim,
                    overrides=overrides,
                    reward_version=reward_version,
                )
                algo_config = contrastive_choices(cfg.algo_config, **choices, strict=False)
                variant = variant_name(algo_config, obj, aug, augment_context)
                applied = applied or bool(variant)
                unapplied = cfg.algo_config if unapplied is None else unapplied
                cfg = replace(cfg, algo_config=algo_config)
                if seed == seeds[0]:  # the budget check does not depend on the seed
                    check_budget(cfg)
                config = json.loads(json.dumps(to_dict(cfg)))
                if worker_device is not None:
                    config["device"] = worker_device
                run_dir = run_dir_for(Path(out), cfg.env, cfg.algo, run_name(seed, sim, variant))
                if run_dir in seen and seen[run_dir].config == config:
                    continue  # this algorithm's run for another value, on which it takes none
                took_objective = bool(variant_name(algo_config, obj, None, False))
                run = SweepRun(
                    cfg.env,
                    cfg.algo,
                    seed,
                    sim,
                    run_dir,
                    config,
                    objective=obj if took_objective else None,
                    augment=_took_augment(algo_config, aug),
                )
                seen[run_dir] = run
                runs.append((i, j, run))
        if unapplied is not None and not applied:
            contrastive_choices(unapplied, **choices)  # raises why, in one line
    dirs = [r.run_dir for _, _, r in runs]
    if len(set(dirs)) != len(dirs):
        raise ValueError("the grid names two runs alike (an env or algorithm listed twice?)")
    return [r for _, _, r in sorted(runs, key=lambda t: t[:2])]  # stable: env, algo, ...


def _axis_values(axis: str, single: str | None, several: Sequence[str] | None) -> list:
    """The values of one grid axis: ``--<axis>s`` (several; a None among them is the
    preset's), or ``--<axis>`` (one), or ``[None]`` (the preset's). Both given is a
    ``ValueError``."""
    if isinstance(several, str):
        several = parse_list(several)
    values = [v.strip() if isinstance(v, str) else v for v in several or []]
    values = list(dict.fromkeys(v for v in values if v != ""))
    if values and single is not None:
        raise ValueError(f"give --{axis} or --{axis}s, not both")
    return values or [single]


def _took_augment(algo_config: Any, augment: str | None) -> str | None:
    """``augment`` (``+``-joined) when it took effect in ``algo_config``, else None."""
    took = augment is not None and variant_name(algo_config, None, augment, False)
    return "+".join(algo_config.augment) if took else None


# -------------------------------------------------------------------------------- plan


SKIP, DIVERGED, RESUME, FRESH, BUSY = "skip", "diverged", "resume", "fresh", "busy"


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} in the run, {b!r} now"]


def _without(config: Any, key: str) -> Any:
    return {k: v for k, v in config.items() if k != key} if isinstance(config, dict) else config


#: Top-level config keys added after runs were written, with the value such a run had: a
#: ``config.json`` without the key compares as if it held that value.
_ADDED_KEYS = {"reward_version": "v2"}


def _with_added_keys(config: Any) -> Any:
    return {**_ADDED_KEYS, **config} if isinstance(config, dict) else config


def plan_run(run: SweepRun) -> str:
    """What a (re)launched sweep does with ``run``: ``skip``, ``diverged`` (skip and report),
    ``busy`` (another live process writes it: leave it alone), ``resume`` or ``fresh``.
    ``ValueError`` when the directory holds a run of another config (a larger budget is the
    same config, extended; a smaller one counts as another config unless the run is
    finished, which is then skipped)."""
    config_path = run.run_dir / "config.json"
    if config_path.exists():
        existing = _with_added_keys(read_json(config_path))
        # threads only say how a run executes (set per executor), not what it computes;
        # steps is the budget, which a relaunch may raise
        diff = _diff(
            _without(_without(existing, "threads"), "steps"),
            _without(_without(run.config, "threads"), "steps"),
        )
        if diff:
            more = f" (+{len(diff) - 2} more)" if len(diff) > 2 else ""
            raise ValueError(
                f"{run.run_dir} holds a run with another config ({'; '.join(diff[:2])}{more}); "
                "use another --out or remove it"
            )
    if run.run_dir.exists() and lock_holder(run.run_dir, probe=True):
        return BUSY
    record = read_status(run.run_dir) if run.run_dir.exists() else {"status": "missing"}
    status = record.get("status")
    if config_path.exists() and status != "finished":
        # only a larger budget extends a run; a smaller one would cut an unfinished run short
        before, now = existing.get("steps"), run.config.get("steps")
        if isinstance(before, int) and isinstance(now, int) and now < before:
            raise ValueError(
                f"{run.run_dir} holds a run with another config (steps: {before!r} in the "
                f"run, {now!r} now; a smaller budget would cut the unfinished run short); "
                "use another --out or remove it"
            )
    if status == "finished":
        reached = int(record.get("env_steps") or 0)
        budget = int(run.config.get("steps", 0))
        if reached < budget and (run.run_dir / CHECKPOINT).exists():
            if record.get("compacted"):  # its replay buffers are gone: it cannot resume
                return SKIP
            return RESUME  # a larger --steps extends the finished run
        return SKIP
    if status == "diverged":
        return DIVERGED
    if (run.run_dir / CHECKPOINT).exists():
        return RESUME
    return FRESH


def _skip_note(run: SweepRun) -> str:
    """Why a skipped run stays short of the sweep's budget ("" when it does not)."""
    try:
        record = read_status(run.run_dir)
    except ValueError:
        return ""
    reached, budget = int(record.get("env_steps") or 0), int(run.config.get("steps", 0))
    if record.get("compacted") and reached < budget:
        return (
            f"compacted; cannot extend (its replay buffers were dropped at {reached:,} of "
            f"{budget:,} env steps)"
        )
    return ""


def plan(runs: Sequence[SweepRun]) -> list[tuple[SweepRun, str]]:
    """``plan_run`` for every run (all checked before anything is launched)."""
    return [(run, plan_run(run)) for run in runs]


# ------------------------------------------------------------------------------ worker


def _record_failure(run_dir: Path, error: str, trace: str) -> str:
    """Writes ``error.txt`` and marks ``status.json`` failed (keeps ``diverged``); when the
    run directory cannot be written, the sweep still goes on."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(trace if trace.endswith("\n") else trace + "\n")
    except OSError:
        return "failed"
    try:
        previous = read_status(run_dir)
    except ValueError:
        previous = {}
    status = "diverged" if previous.get("status") == "diverged" else "failed"
    keep = {k: previous[k] for k in ("iteration", "env_steps", "last_eval_step") if k in previous}
    write_status(run_dir, status, error=error, error_file="error.txt", **keep)
    return status


def _clear(run_dir: Path) -> None:
    """Removes a half-written run's files, all but the lock this process holds."""
    for child in run_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def execute_run(job: dict[str, Any], train_fn: TrainFn | None = None) -> dict[str, Any]:
    """Runs one job in the current process (the body of every executor's worker).

    ``job``: ``{"run_dir", "config", "action" ("fresh" | "resume"), "threads"}``. Sets torch's
    thread count (``threads``, 1 for local workers), rebuilds the config, removes a
    half-written directory before a fresh start and calls ``cocoa.trainer.train`` (or
    ``train_fn``, same signature, for tests). Never raises for a failing run: returns
    ``{"status": "finished" | "failed" | "diverged", "error": ..., "run_dir": ...}``.
    """
    run_dir = Path(job["run_dir"])
    result: dict[str, Any] = {"run_dir": str(run_dir), "action": job["action"]}
    try:
        from cocoa.algorithms import get_algorithm
        from cocoa.config import from_dict

        if train_fn is None:
            from cocoa.trainer import train as train_fn
        config = job["config"]
        cfg = from_dict(config, get_algorithm(config["algo"]).config_cls)
        if job.get("threads"):
            cfg = replace(cfg, threads=int(job["threads"]))
        with RunLock(run_dir) as lock:  # held across the clean-up and the run (train re-enters)
            if job["action"] == FRESH:
                _clear(run_dir)
            if lock.message:  # a stale takeover (or a file system without locks)
                append_log(run_dir, lock.message)
            last = train_fn(cfg, run_dir, resume=job["action"] == RESUME, progress=False)
        result["status"] = "finished"
        mean_return = getattr(last, "mean_return", None)
        if mean_return is not None:
            result["return"] = float(mean_return)
    except RunLocked as exc:  # another process writes the run: touch nothing
        result["status"] = BUSY
        result["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001  (every failure is recorded, the sweep goes on)
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        result["status"] = _record_failure(run_dir, error, traceback.format_exc())
        result["error"] = error
    return result


# ---------------------------------------------------------------------------- executors


@dataclass
class SweepResult:
    """Outcome of a sweep: one entry per run, in grid order.

    ``outcomes``: ``(run, status, detail)`` with status ``finished`` (ran now),
    ``skipped`` (finished before), ``failed``, ``diverged``, ``busy`` (another live process
    writes the run; left alone) or ``not run`` (interrupted sweep).
    """

    outcomes: list[tuple[SweepRun, str, str]]

    def count(self, status: str) -> int:
        return sum(s == status for _, s, _ in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when every run is finished (now or before)."""
        return all(s in ("finished", "skipped") for _, s, _ in self.outcomes)

    def summary(self) -> str:
        """Counts line plus one line per run that is not finished."""
        parts = [f"{self.count(s)} {s}" for s in ("finished", "skipped", "failed", "diverged")]
        parts += [f"{self.count('busy')} busy"] if self.count("busy") else []
        parts += [f"{self.count('not run')} not run"] if self.count("not run") else []
        lines = [f"sweep: {len(self.outcomes)} runs: " + ", ".join(parts)]
        for run, status, detail in self.outcomes:
            if status in ("failed", "diverged"):
                see = run.run_dir / "error.txt"
                where = f" (see {see})" if see.exists() else ""
                lines.append(f"  {status}: {run.run_dir}: {detail}{where}")
            elif status in ("busy", "skipped") and detail:
                lines.append(f"  {status}: {run.run_dir}: {detail}")
            elif status == "not run":
                lines.append(f"  not run: {run.run_dir}")
        return "\n".join(lines)


def last_env_steps(run_dir: Path) -> int:
    """The env steps of the last row of ``run_dir``'s ``progress.csv`` (0 when none): a
    run's progress, updated every iteration (``status.json`` only at checkpoints)."""
    path = Path(run_dir) / "progress.csv"
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            lines = fh.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return 0
    try:
        return int(lines[-1].split(",")[1])
    except (IndexError, ValueError):  # only the header, or no file yet
        return 0


class _Display:
    """tqdm bar of runs done, with the runs that really run (a live process holds their
    lock), the runs queued, failures, and the env steps of the runs in flight (from the last
    row of their ``progress.csv``) against their budgets."""

    POLL_S = 5.0

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="sweep", unit="run", disable=not enabled)
        self.enabled = enabled
        self.running = self.queued = self.failed = 0
        self.steps = ""

    def update(self, done: int = 0, failed: int = 0) -> None:
        self.failed += failed
        postfix = {"running": self.running, "queued": self.queued, "failed": self.failed}
        if self.steps:
            postfix["steps in flight"] = self.steps
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(done)
        if not done:
            self.bar.refresh()

    def poll(self, runs: Sequence[SweepRun]) -> None:
        """Refreshes what ``runs`` (the runs submitted and not done) are doing."""
        if not self.enabled:
            return
        done = total = running = 0
        for run in runs:
            if lock_holder(run.run_dir) is None:
                continue  # waiting for a worker (or just starting)
            running += 1
            total += int(run.config.get("steps", 0))
            done += last_env_steps(run.run_dir)
        self.running, self.queued = running, len(runs) - running
        self.steps = f"{_short(done)}/{_short(total)}" if running else ""
        self.update()

    def write(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _short(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(int(n))


def _job(run: SweepRun, action: str, threads: int | None) -> dict[str, Any]:
    return {"run_dir": str(run.run_dir), "config": run.config, "action": action, "threads": threads}


def _run_inline(todo, display, train_fn, record):
    for run, action in todo:
        display.running, display.queued = 1, 0
        display.update()
        record(run, execute_run(_job(run, action, None), train_fn))


def _run_local(todo, display, train_fn, record, workers: int):
    """At most ``workers`` runs in flight, each in a spawned process. A worker that dies
    (killed, out of memory) breaks the pool: its in-flight runs are recorded as failed and
    the remaining runs continue in a fresh pool."""
    pending = list(todo)
    ctx = get_context("spawn")
    while pending:
        broken = False
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            in_flight: dict[Any, SweepRun] = {}
            while (pending or in_flight) and not broken:
                while pending and len(in_flight) < workers:
                    run, action = pending.pop(0)
                    in_flight[pool.submit(execute_run, _job(run, action, 1), train_fn)] = run
                display.poll(list(in_flight.values()))
                done, _ = wait(in_flight, timeout=display.POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    run = in_flight.pop(future)
                    try:
                        record(run, future.result())
                    except BrokenProcessPool:
                        broken = True
                        record(run, _died(run))
            if broken:
                for run in in_flight.values():
                    record(run, _died(run))


def _died(
    run: SweepRun,
    why: str = "a worker process of the pool died (killed or out of memory?), which stopped "
    "the runs in flight",
) -> dict[str, Any]:
    error = f"WorkerDied: {why}"
    trace = f"{error}\nRelaunch the sweep to resume this run from its last checkpoint.\n"
    return {"status": _record_failure(run.run_dir, error, trace), "error": error}


RAY_LOG = "sweep-ray.log"  # in --out: Ray's own log lines, away from the progress display


def _route_ray_logs(path: Path) -> logging.Handler:
    """Sends the ``ray`` loggers' records to ``path`` (appending) instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ray")
    for old in list(logger.handlers):
        if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _run_ray(todo, display, train_fn, record, address, cpus_per_run, gpus_per_run):
    """Each run a ``ray.remote`` task; results land in each run's own directory, so on a
    multi-node cluster ``--out`` must be a filesystem every node shares."""
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs ray: pip install 'cocoa[ray]'") from None
    log = _route_ray_logs(Path(todo[0][0].run_dir).parents[2] / RAY_LOG)
    started = False
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        started = True
    try:
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(
            execute_run
        )
        threads = max(1, int(cpus_per_run))
        refs = {remote.remote(_job(run, action, threads), train_fn): run for run, action in todo}
        while refs:
            display.poll(list(refs.values()))
            done, _ = ray.wait(list(refs), num_returns=1, timeout=display.POLL_S)
            for ref in done:
                run = refs.pop(ref)
                try:
                    record(run, ray.get(ref))
                except ray.exceptions.RayError as exc:
                    why = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    record(run, _died(run, f"the Ray task failed: {why}"))
    finally:
        if started:
            ray.shutdown()
        logging.getLogger("ray").removeHandler(log)
        log.close()


def run_sweep(
    runs: Sequence[SweepRun],
    *,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    train_fn: TrainFn | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> SweepResult:
    """Plans and executes ``runs``.

    Args:
        executor: ``local`` (``workers`` spawned processes; ``workers=0`` runs everything
            in this process, one after another, for debugging) or ``ray`` (``ray_address``:
            ``auto``, ``HOST:PORT`` or None to use ``RAY_ADDRESS`` / start a local instance;
            an already initialised Ray is used as is).
        cpus_per_run, gpus_per_run: Ray resources of each run's task.
        train_fn: replaces ``cocoa.trainer.train`` (tests); must be importable by workers.
        progress: show the tqdm display.
        echo: where the plan line goes.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; choose local or ray")
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    planned = plan(runs)
    todo = [(r, a) for r, a in planned if a in (RESUME, FRESH)]
    for run, _ in todo:  # a bad --out fails here, in one line, before anything runs
        run.run_dir.parent.mkdir(parents=True, exist_ok=True)
    n = {a: sum(x == a for _, x in planned) for a in (SKIP, DIVERGED, RESUME, FRESH, BUSY)}
    busy = f", {n[BUSY]} in use by another process (left alone)" if n[BUSY] else ""
    echo(
        f"sweep: {len(planned)} runs: {n[SKIP]} finished before (skipped), "
        f"{n[DIVERGED]} diverged before (skipped), {n[RESUME]} to resume, {n[FRESH]} to start"
        + busy
    )
    status: dict[Path, tuple[str, str]] = {}
    for run, action in planned:
        if action == SKIP and _skip_note(run):
            echo(f"  skipped: {run.run_dir}: {_skip_note(run)}")
        if action == SKIP:
            status[run.run_dir] = ("skipped", _skip_note(run))
        elif action == DIVERGED:
            error = read_status(run.run_dir).get("error", "diverged")
            status[run.run_dir] = ("diverged", f"{error}; delete the run directory to rerun it")
        elif action == BUSY:
            holder = lock_holder(run.run_dir) or {}
            status[run.run_dir] = (
                "busy",
                f"in use by PID {holder.get('pid', '?')} on host {holder.get('host', '?')}",
            )

    display = _Display(len(todo), progress and bool(todo))

    def record(run: SweepRun, result: dict[str, Any]) -> None:
        outcome = result["status"]
        status[run.run_dir] = (outcome, result.get("error", ""))
        if outcome != "finished":
            display.write(f"{outcome}: {run.label}: {result.get('error', '')}")
        failed = outcome not in ("finished", BUSY)  # a busy run is left alone, not failed
        display.update(done=1, failed=int(failed))

    try:
        if not todo:
            pass
        elif executor == "ray":
            _run_ray(todo, display, train_fn, record, ray_address, cpus_per_run, gpus_per_run)
        elif workers == 0:
            _run_inline(todo, display, train_fn, record)
        else:
            _run_local(todo, display, train_fn, record, workers)
    finally:
        display.running = display.queued = 0  # nothing in flight any more
        display.steps = ""
        display.update()
        display.close()
    outcomes = [(r, *status.get(r.run_dir, ("not run", ""))) for r, _ in planned]
    return SweepResult(outcomes)
