"""``cocoa bench``: how fast the suite samples and updates, measured on this machine.

Env sampling (steps/s, wall time, resets included; episodes of the family's horizon):

* ``bare env.step``: the underlying simulator env (``env.unwrapped``: the Sawyer or gymnasium
  MuJoCo env) stepped with random actions drawn up front (from the initialised policy's
  distribution, tanh(N(0, 1))), no wrapper, no policy. For Metaworld both
  the stock env and the exact fast path (``cocoa.envs.metaworld_fast``) are measured.
* ``sampler, 1 worker``: PEARL's collection job (``cocoa.pearl_collect.collect_task``) through
  ``cocoa.sampler.Sampler`` in process: our ``TaskEnv``, the policy's numpy copy in the loop,
  episodes stored as arrays; for the quick and the paper preset's policy size.
* ``sampler, N workers``: the same jobs dealt to N worker processes.

Updates (gradient steps/s, wall time): ``Pearl.gradient_steps`` for PEARL and CoCOA on each
preset and device, with buffers filled by real episodes of the family, and for CoCOA with each
other context objective (``cocoa.objectives``); each baseline's update
on data it collected; one ``Adam.step`` over PEARL's parameters with the fused kernel and
with ``foreach``. Every figure is the median of ``repeats`` timed blocks after one
untimed warm-up block.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from cocoa.envs import TaskFamily, get_family
from cocoa.task_samplers import get_sampler

from .pearl_collect import CollectJob, Phase, Weights, collect_task
from .sampler import Sampler

clock = time.perf_counter


@dataclass
class Row:
    """One measured figure."""

    section: str  # "env" or "update"
    name: str
    value: float  # the median rate
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


def median_rate(block: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    """``block`` returns a rate; one untimed warm-up call, then the median of ``repeats``."""
    block()
    rates = [block() for _ in range(repeats)]
    return statistics.median(rates), rates


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


# ----------------------------------------------------------------------- env sampling


def bare_steps_per_second(
    env, horizon: int, episodes: int, rng: np.random.Generator
) -> Callable[[], float]:
    """A block of ``episodes`` episodes of random actions on a bare env (resets timed; the
    actions are drawn before the clock starts).

    The actions follow an initialised tanh-Gaussian policy's distribution, tanh(N(0, 1)) per
    dimension (scaled to the env's bounds), the one the sampler's policy produces: what the
    physics costs depends on the actions (contacts, joint limits), so the bare loop and the
    sampler must drive the arm alike for their ratio to measure the sampler's own overhead.
    """
    low, high = env.action_space.low, env.action_space.high

    def block() -> float:
        unit = np.tanh(rng.standard_normal((episodes, horizon, *low.shape)))
        actions = low + (unit + 1.0) * 0.5 * (high - low)
        seeds = rng.integers(2**31 - 1, size=episodes)
        steps, start = 0, clock()
        for seed, episode_actions in zip(seeds, actions):
            env.reset(seed=int(seed))
            for action in episode_actions:
                _, _, terminated, truncated, _ = env.step(action)
                steps += 1
                if terminated or truncated:
                    break
        return steps / (clock() - start)

    return block


def _policy_weights(family: TaskFamily, preset_name: str, seed: int = 0) -> Weights:
    """Numpy weights of a freshly initialised PEARL policy and encoder of ``preset_name``."""
    from .pearl import Pearl, preset

    cfg = replace(preset(family, preset_name), replay_buffer_size=1024)
    tasks = get_sampler(family.name).train_tasks()[:1]
    return Pearl(cfg, family, tasks, torch.device("cpu"), seed).collection_weights()


def sampler_steps_per_second(
    sampler: Sampler, weights: Weights, family: TaskFamily, jobs: int, episodes_per_job: int
) -> Callable[[], float]:
    """A block of ``jobs`` prior-phase collection jobs of ``episodes_per_job`` episodes each."""
    tasks = get_sampler(family.name).train_tasks()
    phases = (Phase(episodes_per_job * family.horizon, posterior=False, add_to_enc=True),)
    counter = iter(range(10**9))

    def block() -> float:
        batch = [CollectJob(tasks[i % len(tasks)], next(counter), phases) for i in range(jobs)]
        start = clock()
        results = sampler.run(collect_task, weights, batch)
        elapsed = clock() - start
        return sum(len(c.episode) for r in results for c in r) / elapsed

    return block


def bench_env(
    env_name: str, workers: int, repeats: int, episodes: int, progress: Callable[[str], None]
) -> list[Row]:
    """Bare env loop, sampler on one worker and on ``workers`` workers (see the docstring)."""
    family = get_family(env_name)
    task = get_sampler(family.name).train_tasks()[0]
    rows: list[Row] = []
    rng = np.random.default_rng(0)
    H = family.horizon
    variants = [("", {})]
    if family.kind == "metaworld":
        variants = [(" (stock)", {"fast": False}), (" (fast path)", {"fast": True})]
    for label, kwargs in variants:
        progress(f"bare env.step{label}")
        env = family.make_env(task, **kwargs)
        env.reset(seed=0)  # the task is applied at reset
        rate, runs = median_rate(bare_steps_per_second(env.unwrapped, H, episodes, rng), repeats)
        rows.append(Row("env", f"bare env.step{label}", rate, "steps/s", {"runs": runs}))
        env.close()
    # the sampler's jobs: 2 episodes each, enough jobs to keep every worker busy
    n_jobs = max(2, workers) * max(1, episodes // 2)
    for preset_name in ("quick", "paper"):
        weights = _policy_weights(family, preset_name)
        for n in sorted({1, workers}):
            progress(f"sampler, {n} worker{'s' * (n > 1)}, {preset_name} policy")
            sampler = Sampler(family, workers=n)
            try:
                block = sampler_steps_per_second(sampler, weights, family, n_jobs, 2)
                rate, runs = median_rate(block, repeats)
            finally:
                sampler.close()
            name = f"sampler, {n} worker{'s' * (n > 1)}, {preset_name} policy"
            detail = {"workers": n, "preset": preset_name, "runs": runs}
            rows.append(Row("env", name, rate, "steps/s", detail))
    return rows


# -------------------------------------------------------------------------- updates


def _filled_pearl(
    env_name: str,
    preset_name: str,
    algo: str,
    device: torch.device,
    objective: str | None = None,
):
    """A PEARL/CoCOA learner (CoCOA with ``objective``, None: the default) whose buffers hold
    two real episodes per training task."""
    from .objectives import contrastive_choices
    from .pearl import Pearl, preset

    family = get_family(env_name)
    cfg = preset(family, preset_name, contrastive=algo == "cocoa")
    cfg = contrastive_choices(cfg, objective=objective)
    cfg = replace(
        cfg,
        num_initial_steps=2 * family.horizon,
        num_tasks_sample=0,
        num_train_steps_per_itr=0,
        replay_buffer_size=min(cfg.replay_buffer_size, 100_000),
    )
    agent = Pearl(cfg, family, get_sampler(family.name).train_tasks(), device, seed=0)
    agent.train_iteration()
    return agent


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_rate(
    work: Callable[[], object], count: int, device: torch.device
) -> Callable[[], float]:
    """A block that runs ``work`` (``count`` units of it) and returns units/s; on a GPU the
    clock waits for the device on both ends, so queued kernels are counted."""

    def block() -> float:
        _synchronize(device)
        start = clock()
        work()
        _synchronize(device)
        return count / (clock() - start)

    return block


def bench_pearl_update(
    env_name: str,
    preset_name: str,
    algo: str,
    device: torch.device,
    repeats: int,
    objective: str | None = None,
) -> Row:
    """Gradient steps/s of ``Pearl.gradient_steps`` (one step = one meta-batch update);
    ``objective``: CoCOA's context objective (None: the preset's, ``trajectory``)."""
    agent = _filled_pearl(env_name, preset_name, algo, device, objective)
    # blocks of about a second on CPU (quick ≈ 100 steps/s, paper ≈ 2) and more on a GPU
    steps = (50 if preset_name == "quick" else 4) * (25 if device.type == "cuda" else 1)
    block = device_rate(lambda: agent.gradient_steps(steps), steps, device)
    rate, runs = median_rate(block, repeats)
    detail = {"algo": algo, "preset": preset_name, "device": device.type, "runs": runs}
    label = f"{algo} update"
    if objective is not None:
        detail["objective"] = objective
        label = f"{algo} update ({objective})"
    return Row("update", f"{label}, {preset_name}, {device.type}", rate, "steps/s", detail)


def bench_baseline_update(
    env_name: str, preset_name: str, algo: str, device: torch.device, repeats: int
) -> Row:
    """A baseline's update rate on data it collected itself: SAC gradient steps/s for
    ``oracle-sac`` (``gradient_steps``); for the on-policy baselines, meta-updates/s
    (``update_on`` of one iteration's ``collect_data``: one TRPO or PPO update)."""
    from .algorithms import get_algorithm

    family = get_family(env_name)
    spec = get_algorithm(algo)
    cfg = spec.preset(family, preset_name)
    learner = spec.build(cfg, family, get_sampler(family.name).train_tasks(), device, 0)
    detail = {"algo": algo, "preset": preset_name, "device": device.type}
    if hasattr(learner, "gradient_steps"):  # off-policy: many steps per iteration
        learner.train_iteration()  # fills the buffers with real episodes
        steps = 50 * (25 if device.type == "cuda" else 1)
        block = device_rate(lambda: learner.gradient_steps(steps), steps, device)
        unit = "steps/s"
    else:  # on-policy: one update per iteration of fresh data
        data = learner.collect_data()
        block = device_rate(lambda: learner.update_on(data), 1, device)
        unit = "updates/s"
    rate, runs = median_rate(block, repeats)
    detail["runs"] = runs
    return Row("update", f"{algo} update, {preset_name}, {device.type}", rate, unit, detail)


def bench_adam(env_name: str, preset_name: str, device: torch.device, repeats: int) -> list[Row]:
    """``Adam.step`` over all of PEARL's trained parameters, fused kernel vs ``foreach``
    (the choice ``cocoa.nets.adam`` makes), in steps/s."""
    from .pearl import Pearl, preset

    family = get_family(env_name)
    cfg = replace(preset(family, preset_name), replay_buffer_size=1024)
    agent = Pearl(cfg, family, get_sampler(family.name).train_tasks()[:1], device, seed=0)
    modules = (agent.policy, agent.qf1, agent.qf2, agent.vf, agent.encoder)
    params = [p for m in modules for p in m.parameters()]
    steps = 100
    rows = []
    for impl in ("fused", "foreach"):
        copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
        for c in copies:
            c.grad = torch.randn_like(c)
        opt = torch.optim.Adam(copies, lr=3e-4, **{impl: True})

        def work(opt: torch.optim.Optimizer = opt) -> None:
            for _ in range(steps):
                opt.step()

        rate, runs = median_rate(device_rate(work, steps, device), repeats)
        detail = {"impl": impl, "preset": preset_name, "device": device.type, "runs": runs}
        name = f"Adam.step {impl}, {preset_name}, {device.type}"
        rows.append(Row("update", name, rate, "steps/s", detail))
    return rows


# --------------------------------------------------------------------------- report


def ratios(rows: list[Row], workers: int) -> dict[str, float]:
    """The ratios that matter, from the measured rows."""
    by_name = {r.name: r.value for r in rows}
    out: dict[str, float] = {}
    bare = by_name.get("bare env.step (fast path)", by_name.get("bare env.step"))
    if "bare env.step (stock)" in by_name and bare:
        out["fast path / stock env.step"] = bare / by_name["bare env.step (stock)"]
    for preset_name in ("quick", "paper"):
        one = by_name.get(f"sampler, 1 worker, {preset_name} policy")
        if one and bare:
            out[f"sampler 1 worker / bare env.step ({preset_name} policy)"] = one / bare
        many = by_name.get(f"sampler, {workers} workers, {preset_name} policy")
        if one and many:
            out[f"{workers} workers / 1 worker ({preset_name} policy)"] = many / one
    for r in rows:
        if r.detail.get("impl") == "fused":
            foreach = by_name.get(r.name.replace("fused", "foreach", 1))
            if foreach:
                key = (
                    f"fused / foreach Adam.step speed ({r.detail['preset']}, {r.detail['device']})"
                )
                out[key] = r.value / foreach
        if r.section == "update" and r.detail.get("algo") == "cocoa":
            where = f"{r.detail['preset']}, {r.detail['device']}"
            pearl = by_name.get(f"pearl update, {where}")
            if pearl:
                objective = r.detail.get("objective")
                what = f"CoCOA {objective}" if objective else "CoCOA"
                out[f"{what} / PEARL update time ({where})"] = pearl / r.value
    return out


def format_table(rows: list[Row], ratio: dict[str, float]) -> str:
    """A plain-text table of the rows and ratios."""
    width = max([len(r.name) for r in rows] + [len(k) for k in ratio] + [10])
    lines = [f"{'measure':<{width}}  {'median':>10}  unit", "-" * (width + 20)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.value:>10.1f}  {r.unit}")
    if ratio:
        lines.append("-" * (width + 20))
        for k, v in ratio.items():
            lines.append(f"{k:<{width}}  {v:>10.2f}  x")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- driver

SECTIONS = ("env", "update")
PEARL_ALGOS = ("pearl", "cocoa")


def run_bench(
    env_name: str,
    workers: int,
    devices: list[torch.device],
    presets: tuple[str, ...],
    algos: tuple[str, ...] | None,
    sections: tuple[str, ...],
    repeats: int,
    episodes: int,
    progress: Callable[[str], None],
    objectives: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every requested measurement; returns the JSON-ready report.

    ``algos=None``: every algorithm on the quick preset, PEARL and CoCOA only on paper (a
    paper-size MAML-TRPO or RL²-PPO batch is ~10⁵ env steps per update: minutes each on a
    CPU; name them with ``algos`` to time them anyway).

    ``objectives``: CoCOA's context objectives timed besides its default, wherever CoCOA is
    timed (None: every registered one but ``trajectory`` and ``none``, which are the CoCOA
    and PEARL rows).
    """
    from .algorithms import list_algorithms
    from .objectives import OBJECTIVES, check_objective

    if objectives is None:
        objectives = tuple(o for o in OBJECTIVES if o not in ("trajectory", "none"))
    for objective in objectives:
        check_objective(objective)

    rows: list[Row] = []
    if "env" in sections:
        rows += bench_env(env_name, workers, repeats, episodes, progress)
    if "update" in sections:
        for device in devices:
            for preset_name in presets:
                chosen = algos or (list_algorithms() if preset_name == "quick" else PEARL_ALGOS)
                for algo in sorted(chosen, key=lambda a: a not in PEARL_ALGOS):
                    progress(f"{algo} update, {preset_name}, {device.type}")
                    measure = bench_pearl_update if algo in PEARL_ALGOS else bench_baseline_update
                    rows.append(measure(env_name, preset_name, algo, device, repeats))
                    for objective in objectives if algo == "cocoa" else ():
                        progress(f"cocoa update ({objective}), {preset_name}, {device.type}")
                        row = bench_pearl_update(
                            env_name, preset_name, algo, device, repeats, objective
                        )
                        rows.append(row)
                progress(f"Adam.step fused and foreach, {preset_name}, {device.type}")
                rows += bench_adam(env_name, preset_name, device, repeats)
    ratio = ratios(rows, workers)
    return {
        "env": get_family(env_name).name,
        "workers": workers,
        "repeats": repeats,
        "machine": machine(),
        "rows": [vars(r) for r in rows],
        "ratios": ratio,
        "table": format_table(rows, ratio),
    }
