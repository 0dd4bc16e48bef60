"""The ``cocoa`` command line.

Every user error (unknown env, algorithm or similarity, bad numbers, a missing or corrupt run
directory) is one line on stderr and a non-zero exit; nothing already written is touched.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process stopped by it


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """cocoa: meta-RL benchmark suite (CoCOA, PEARL, MAML-TRPO, RL²-PPO, oracle-SAC)."""


# ------------------------------------------------------------------------------------ envs


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per family.")
@click.option("--show", metavar="NAME", help="Describe one family (short name or full id).")
def envs(as_json: bool, show: str | None) -> None:
    """List the task families with their spaces, horizon and task counts."""
    from cocoa.envs import get_family, list_families

    if show:
        details = family_details(get_family(show))
        if as_json:
            click.echo(json.dumps(details, indent=1))
        else:
            click.echo(_format_details(details))
        return
    names = list_families()
    rows = []
    for name in names:
        d = get_family(name).describe()
        rows.append(
            {
                k: d[k]
                for k in (
                    "name",
                    "obs_dim",
                    "action_dim",
                    "horizon",
                    "n_train",
                    "n_test",
                    "oracle_dim",
                    "has_success",
                )
            }
            | {"full_id": d["full_id"], "kind": d["kind"]}
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    header = (
        f"{'name':<28}{'kind':<11}{'obs':>5}{'act':>5}{'horizon':>9}{'train':>7}{'test':>6}"
        f"{'oracle':>8}  success"
    )
    click.echo(header)
    for r in rows:
        click.echo(
            f"{r['name']:<28}{r['kind']:<11}{r['obs_dim']:>5}{r['action_dim']:>5}"
            f"{r['horizon']:>9}{r['n_train']:>7}{r['n_test']:>6}{r['oracle_dim']:>8}  "
            f"{'yes' if r['has_success'] else 'no'}"
        )


def family_details(family, task_seed: int = 0) -> dict:
    """What ``cocoa envs --show`` prints: the family's row, its task distribution (docstring
    summary, the train split's parameters and oracle features), reward, and every protocol's
    episode counts."""
    import inspect

    import numpy as np

    from cocoa.evaluator import PROTOCOLS, get_protocol
    from cocoa.task_samplers import TaskSampler

    d = dict(family.describe())
    doc = inspect.getdoc(type(family)) or ""
    d["tasks"] = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
    d["reward"] = (
        "sparse (the context and reported reward; the RL reward is dense)"
        if family.has_sparse_reward
        else "dense"
    )
    sampler = TaskSampler(family, task_seed)
    train = sampler.train_tasks()
    d["task_seed"] = task_seed
    params = {}
    for name, value in train[0].params:
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [float(t.param(name)) for t in train]
            params[name] = f"scalar in [{min(values):.3g}, {max(values):.3g}]"
        elif isinstance(value, tuple):
            params[name] = f"{len(value)} numbers"
        elif isinstance(value, bytes):
            params[name] = f"{len(value)} bytes of serialised task data"
        else:
            params[name] = ", ".join(sorted({str(t.param(name)) for t in train}))
    d["parameters"] = params
    feats = np.array([t.features for t in train], dtype=float).reshape(len(train), -1)
    d["oracle_range"] = [[round(float(lo), 3), round(float(hi), 3)] for lo, hi in
                         zip(feats.min(0), feats.max(0))][:8]  # fmt: skip
    protocols = {}
    for name in PROTOCOLS:
        try:
            p = get_protocol(name, family)
        except ValueError:
            protocols[name] = None
            continue
        protocols[name] = {
            "horizon": p.horizon,
            "explore_episodes": p.n_explore,
            "eval_episodes": p.n_eval,
            "runs": p.n_runs,
            "online": p.online,
        }
    d["protocols"] = protocols
    return d


def _format_details(d: dict) -> str:
    lines = [
        f"{d['name']} ({d['full_id']}, {d['kind']})",
        f"  tasks:      {d['tasks']}",
        f"  split:      {d['n_train']} train / {d['n_test']} test tasks, fixed by task seed "
        f"{d['task_seed']} (the same for every run seed; --set task_seed=N changes it)",
    ]
    for name, text in d["parameters"].items():
        lines.append(f"  parameter:  {name}: {text} (train split)")
    oracle = ", ".join(f"[{lo}, {hi}]" for lo, hi in d["oracle_range"])
    more = " ..." if d["oracle_dim"] > len(d["oracle_range"]) else ""
    lines += [
        f"  oracle:     {d['oracle_dim']} features (oracle-sac's input); train ranges "
        f"{oracle}{more}",
        f"  spaces:     observation {d['obs_dim']}, action {d['action_dim']} (in [-1, 1])",
        f"  horizon:    {d['horizon']} steps",
        f"  reward:     {d['reward']}; success reported: {'yes' if d['has_success'] else 'no'}",
    ]
    for name, p in d["protocols"].items():
        if p is None:
            lines.append(f"  protocol:   {name}: does not apply")
            continue
        runs = f", {p['runs']} runs per task" if p["runs"] > 1 else ""
        runs += ", online (each adapted on all before it; the last reported)" if p["online"] else ""
        lines.append(
            f"  protocol:   {name}: {p['explore_episodes']} exploration + {p['eval_episodes']} "
            f"evaluation episodes of {p['horizon']} steps per test task{runs}"
        )
    return "\n".join(lines)


# one line per built-in measure (q: a query crop's posterior, k: a key crop's)
SIMILARITY_DESCRIPTIONS = {
    "bhattacharyya": "-(mu_q - mu_k)^T S^-1 (mu_q - mu_k), S = (S_q + S_k)/2: the thesis's "
    "eq. 4.2, a Mahalanobis distance between the two Gaussian posteriors",
    "bhattacharyya-full": "the true negative Bhattacharyya distance: 1/8 of the term above "
    "plus its log-determinant term",
    "neg-euclidean": "-||mu_q - mu_k||^2 between the posterior means",
    "dot": "mu_q . mu_k, the posterior means' dot product",
    "bilinear": "mu_q^T W mu_k with W learned, starting at the identity (CURL's)",
    "cosine": "cos(mu_q, mu_k) / 0.1 (MoCo/SimCLR style, temperature 0.1)",
}


@cli.command()
def similarities() -> None:
    """List the registered CoCOA similarity measures (values for --similarity), one line
    each."""
    import inspect

    from cocoa.contrastive import _REGISTRY, SIMILARITIES

    width = max(len(n) for n in SIMILARITIES) + len("  (default)")
    for name in SIMILARITIES:
        label = name + ("  (default)" if name == "bhattacharyya" else "")
        text = SIMILARITY_DESCRIPTIONS.get(name)
        if text is None:  # a measure registered elsewhere: its factory's docstring
            text = (inspect.getdoc(_REGISTRY[name]) or "").split("\n")[0]
        click.echo(f"{label:<{width}}  {text}".rstrip())


@cli.command()
def objectives() -> None:
    """List the registered context objectives (values for --objective), one line each."""
    from cocoa.objectives import OBJECTIVE_REGISTRY

    click.echo("\n".join(OBJECTIVE_REGISTRY.listing(default="trajectory")))


@cli.command()
def augmentations() -> None:
    """List the registered context augmentations (values for --augment), one line each."""
    from cocoa.augment import AUGMENTATION_REGISTRY

    click.echo("\n".join(AUGMENTATION_REGISTRY.listing(default="crop")))


def _contrastive_options(func):
    """``--objective``, ``--augment`` and ``--augment-context`` (meta-train, sweep, ablate)."""
    options = [
        click.option(
            "--objective",
            default=None,
            metavar="NAME",
            help="CoCOA's context objective (default trajectory; none: PEARL); see "
            "`cocoa objectives`.",
        ),
        click.option(
            "--augment",
            default=None,
            metavar="NAME[,NAME]",
            help="Augmentations of the objective's views (default crop; transition: noise); "
            "see `cocoa augmentations`.",
        ),
        click.option(
            "--augment-context",
            is_flag=True,
            help="Also apply the augmentations to PEARL's RL context (RAD; works for pearl).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# ------------------------------------------------------------------------------ meta-train


def _nonnegative(ctx, param, value):
    if value is not None and value < 0:
        raise click.BadParameter(f"must be >= 0, got {value}")
    return value


@cli.command("meta-train")
@click.option("--env", "env", metavar="NAME", help="Task family (e.g. reach, cheetah-vel).")
@click.option(
    "--algo",
    default="cocoa",
    show_default=True,
    help="cocoa, pearl, maml-trpo, rl2-ppo, oracle-sac.",
)
@click.option(
    "--similarity",
    default=None,
    metavar="NAME",
    help="CoCOA similarity (default bhattacharyya); see `cocoa similarities`.",
)
@_contrastive_options
@click.option("--seed", type=int, default=0, show_default=True, callback=_nonnegative)
@click.option(
    "--steps",
    type=int,
    default=None,
    callback=_nonnegative,
    help="Env-step budget [default: the preset's; 2.5M on Metaworld].",
)
@click.option(
    "--preset",
    type=click.Choice(["auto", "paper", "quick"]),
    default="auto",
    show_default=True,
    help="auto = paper on CUDA, quick on CPU.",
)
@click.option(
    "--protocol", default="thesis", show_default=True, help="thesis, metaworld-v3 or pearl."
)
@click.option(
    "--reward-version",
    type=click.Choice(["v1", "v2"]),
    default=None,
    help="Metaworld's reward function: v2 (Metaworld v3's default, <= 10 per step) or v1 (the "
    "thesis's, up to ~2,000 per step on reach); Metaworld families only [default: v2; a "
    "resumed run keeps its own].",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="results/runs",
    show_default=True,
    help="Runs root: the run lands in OUT/ENV/ALGO/NAME.",
)
@click.option("--name", default=None, help="Run name [default: seed<seed>-<timestamp>].")
@click.option(
    "--config",
    "config_file",
    type=click.Path(),
    default=None,
    help='JSON/YAML overrides, e.g. {"algo_config": {"kl_lambda": 0.2}}.',
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(),
    default=None,
    metavar="RUN_DIR",
    help="Continue a killed run from its last checkpoint (one stopped before its first "
    "checkpoint starts afresh).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Sampler processes (cocoa, pearl) [default: 1, in process]; results do not depend on it.",
)
@click.option(
    "--eval-interval",
    type=click.IntRange(min=1),
    default=None,
    help="Env steps between meta-tests (and checkpoints) [default: the preset's].",
)
@click.option(
    "--set",
    "set_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config override, e.g. --set algo_config.kl_lambda=0.2 (repeatable; wins over --config).",
)
@click.option(
    "--compact",
    is_flag=True,
    help="With --resume of a finished run: drop its replay buffers from the checkpoint "
    "(meta-test still works; resuming no longer does).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def meta_train(
    env,
    algo,
    similarity,
    objective,
    augment,
    augment_context,
    seed,
    steps,
    preset,
    protocol,
    reward_version,
    device,
    out,
    name,
    config_file,
    resume_dir,
    workers,
    eval_interval,
    set_items,
    compact,
    quiet,
):
    """Meta-train ALGO on ENV, meta-testing periodically; writes a run directory."""
    from cocoa.algorithms import check_budget
    from cocoa.config import load_overrides, make_run_config
    from cocoa.envs import get_family
    from cocoa.runs import default_run_name, run_dir_for
    from cocoa.sweep import merge_overrides, parse_set
    from cocoa.trainer import train

    if compact and not resume_dir:
        raise click.UsageError("--compact needs --resume RUN_DIR (a finished run)")
    if resume_dir:
        if set_items or config_file:
            raise click.UsageError("--set and --config apply to new runs, not to --resume")
        if objective or augment or augment_context:
            raise click.UsageError(
                "--objective, --augment and --augment-context apply to new runs, not to --resume"
            )
        cfg, run_dir = _load_run(resume_dir)
        if reward_version is not None and reward_version != cfg.reward_version:
            raise click.UsageError(
                f"{run_dir} was trained with reward version {cfg.reward_version}; a resumed "
                "run keeps its reward version"
            )
        if compact:
            from cocoa.trainer import compact as compact_run

            before, after = compact_run(run_dir)
            click.echo(f"compacted {run_dir}: checkpoint {_size(before)} -> {_size(after)}")
            return
        if steps is not None:
            cfg = replace(cfg, steps=steps)
        if workers is not None:
            cfg = replace(cfg, workers=workers)
        if eval_interval is not None:
            cfg = replace(cfg, eval_interval=eval_interval)
        from cocoa.runs import RunLock, append_log
        from cocoa.sweep import _clear
        from cocoa.trainer import checkpoint_path

        with RunLock(run_dir) as lock:  # held across the clean-up and the run (train re-enters)
            fresh = not checkpoint_path(run_dir).exists()
            if fresh:  # stopped before its first checkpoint: start it again, as a sweep does
                click.echo(
                    f"{run_dir} has no checkpoint yet: starting it afresh "
                    f"({cfg.steps:,} env steps)",
                    err=True,
                )
                _clear(run_dir)
            if lock.message:  # a stale takeover (or a file system without locks)
                append_log(run_dir, lock.message)
            result = train(
                cfg,
                run_dir,
                resume=not fresh,
                progress=not quiet,
                on_resume=lambda iteration, done: _resume_header(cfg, run_dir, iteration, done),
            )
    else:
        if not env:
            raise click.UsageError("--env is required (e.g. --env reach); see `cocoa envs`")
        overrides = load_overrides(config_file) if config_file else {}
        overrides = merge_overrides(overrides, parse_set(set_items))
        if eval_interval is not None:
            overrides = merge_overrides(overrides, {"eval_interval": eval_interval})
        cfg = make_run_config(
            env=env,
            algo=algo,
            seed=seed,
            steps=steps,
            preset=preset,
            protocol=protocol,
            device=device,
            similarity=similarity,
            overrides=overrides or None,
            workers=workers or 1,
            reward_version=reward_version or "v2",
        )
        from cocoa.objectives import contrastive_choices

        algo_config = contrastive_choices(
            cfg.algo_config,
            objective=objective,
            augment=augment,
            augment_context=augment_context,
        )
        cfg = replace(cfg, algo_config=algo_config)
        check_budget(cfg)
        run_dir = run_dir_for(Path(out), cfg.env, cfg.algo, name or default_run_name(seed))
        if (run_dir / "config.json").exists():
            raise ValueError(f"{run_dir} already holds a run; pick another --name or --resume it")
        run_dir.parent.mkdir(parents=True, exist_ok=True)  # a bad --out fails here, in one line
        rewards = (
            f", {cfg.reward_version} rewards" if get_family(cfg.env).kind == "metaworld" else ""
        )
        click.echo(
            f"{cfg.algo} on {cfg.env}: preset {cfg.preset}{rewards}, {cfg.steps:,} env steps, "
            f"device {cfg.device} -> {run_dir}",
            err=True,
        )
        result = train(cfg, run_dir, progress=not quiet)
    if result is None:
        from cocoa.runs import read_status

        record = read_status(run_dir)
        reached = record.get("env_steps")
        at = f" (at {reached:,})" if isinstance(reached, int) else ""
        click.echo(
            f"nothing to do: {run_dir} already reached {cfg.steps:,} env steps{at}; "
            f"its status stays {record.get('status')}"
        )
        return
    line = f"final meta-test return {result.mean_return:.2f}"
    if result.has_success:
        line += f", success {result.success_rate:.3f}"
    click.echo(f"{line} ({run_dir})")


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _resume_header(cfg, run_dir, iteration: int, done: int) -> None:
    """The header line of a resumed run: where it stands and where it goes."""
    click.echo(
        f"{cfg.algo} on {cfg.env}: resuming at iteration {iteration}, {done:,} of "
        f"{cfg.steps:,} env steps, preset {cfg.preset}, device {cfg.device} -> {run_dir}",
        err=True,
    )


def _load_run(run_dir):
    """(config, path) of an existing run directory; ``ValueError`` when it is not one."""
    from cocoa.algorithms import get_algorithm
    from cocoa.config import from_dict
    from cocoa.runs import check_run_dir, read_json

    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    data = read_json(run_dir / "config.json")
    if not isinstance(data, dict) or "algo" not in data or "env" not in data:
        raise ValueError(f"corrupt {run_dir / 'config.json'}: not a run config")
    spec = get_algorithm(data["algo"])
    return from_dict(data, spec.config_cls), run_dir


# ------------------------------------------------------------------------------- meta-test


@cli.command("meta-test")
@click.argument("run_dir", type=click.Path())
@click.option("--protocol", default=None, help="Override the run's protocol.")
@click.option("--seed", type=int, default=None, help="Evaluation seed [default: the run's].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--save",
    is_flag=True,
    help="Also write the result to RUN_DIR/evals/<protocol>-<env steps>.json (where "
    "`cocoa plot --online` finds PEARL-protocol curves).",
)
@click.option(
    "--official",
    is_flag=True,
    help="Metaworld runs: also evaluate through Metaworld's own evaluator "
    "(metaworld.evaluation.metalearning_evaluation, on its test envs for the run's env, reward "
    "version and task seed) and print its figures beside ours under metaworld-v3.",
)
def meta_test(run_dir, protocol, seed, as_json, save, official):
    """Evaluate a run's last checkpoint on its held-out test tasks."""
    from cocoa.config import run_family
    from cocoa.evaluator import evaluate
    from cocoa.trainer import build, checkpoint_path, load_checkpoint

    cfg, run_dir = _load_run(run_dir)
    if official:
        from cocoa.official import official_benchmark

        official_benchmark(run_family(cfg))  # a non-Metaworld run: one line, before any work
        if protocol and protocol != "metaworld-v3":
            raise click.UsageError(
                "--official compares Metaworld's evaluator with the metaworld-v3 protocol; "
                f"drop --protocol {protocol}"
            )
        protocol = "metaworld-v3"
    if protocol:
        cfg = replace(cfg, protocol=protocol)
    if not checkpoint_path(run_dir).exists():
        raise ValueError(
            f"{run_dir} has no checkpoint to evaluate yet ({checkpoint_path(run_dir)} is missing)"
        )
    ckpt = load_checkpoint(run_dir)
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        cfg = replace(cfg, device="cpu")
    setup = build(cfg)
    setup.learner.load_state_dict(ckpt["learner"])
    proto = setup.protocol
    if official:
        click.echo(
            f"running our metaworld-v3 protocol ({len(setup.sampler.test_tasks())} goals x "
            f"{proto.n_explore} + {proto.n_eval} episodes of {proto.horizon} steps)...",
            err=True,
        )
    result = evaluate(
        setup.learner,
        setup.family,
        setup.sampler.test_tasks(),
        proto,
        seed=cfg.seed if seed is None else seed,
    )
    official_result = None
    if official:
        from cocoa.official import (
            OFFICIAL_ADAPTATION_EPISODES,
            OFFICIAL_EVALUATION_EPISODES,
            official_evaluate,
        )

        setup.learner.load_state_dict(ckpt["learner"])  # the same weights, untouched by ours
        n_goals = len(setup.sampler.test_tasks())
        click.echo(
            f"running Metaworld's evaluator ({n_goals} goals x "
            f"{OFFICIAL_ADAPTATION_EPISODES} adaptation episodes, then evaluation until "
            f"{OFFICIAL_EVALUATION_EPISODES} episodes per env class end)...",
            err=True,
        )
        official_result = official_evaluate(
            setup.learner, setup.family, cfg.task_seed, progress=not as_json
        )
    summary = {
        "run_dir": str(run_dir),
        "env_steps": setup.learner.env_steps,
        "protocol": proto.name,
        "reward_version": cfg.reward_version,
        **result.metrics(),
        **({"online_returns": result.online_curve()} if proto.online else {}),
        "tasks": result.records(),
    }
    if official_result is not None:
        summary["official"] = official_result.summary()
    if save:
        from cocoa.runs import write_json

        path = run_dir / "evals" / f"{proto.name}-{setup.learner.env_steps:09d}.json"
        record = {"env_steps": setup.learner.env_steps, "protocol": proto.name}
        record |= result.summary() | {"tasks": result.records()}
        if official_result is not None:
            record["official"] = official_result.summary()
        write_json(path, record)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    if official_result is not None:
        click.echo(_official_block(cfg, setup.learner.env_steps, result, official_result))
        return
    if proto.online:
        episodes = (
            f"{proto.n_runs} runs of {proto.n_explore} prior + {proto.n_eval} posterior "
            f"trajectories, the last reported"
        )
    else:
        episodes = f"{proto.n_explore} exploration + {proto.n_eval} evaluation episodes"
    click.echo(
        f"{cfg.algo} on {cfg.env} after {setup.learner.env_steps:,} env steps "
        f"({proto.name}: {episodes}, horizon {proto.horizon})"
    )
    for t in result.tasks:
        succ = f"  success {t.success_rate:.2f}" if result.has_success else ""
        click.echo(f"  task {t.task:>3}  return {t.mean_return:10.2f}{succ}")
    if proto.online:
        curve = ", ".join(f"{r:.2f}" for r in result.online_curve())
        click.echo(f"online curve (mean return by trajectory): {curve}")
    line = f"mean return {result.mean_return:.2f}"
    if result.has_success:
        line += f", success rate {result.success_rate:.3f}"
    click.echo(line)


def _official_block(cfg, env_steps: int, ours, official) -> str:
    """Metaworld's evaluator beside our metaworld-v3 protocol, with what differs."""
    per_goal = "  ".join(f"{k}:{v:.2f}" for k, v in official.goal_success.items())
    counted = "; ".join(
        f"{name}: goals {', '.join(str(g) for g in goals)}"
        for name, goals in official.counted_goals.items()
    )
    lines = [
        f"{cfg.algo} on {cfg.env} after {env_steps:,} env steps ({cfg.reward_version} rewards, "
        f"{official.goals} test goals, task seed {cfg.task_seed})",
        f"  {'':<24}{'success':>8}{'return':>11}",
        f"  {'metaworld-v3 (ours)':<24}{ours.success_rate:>8.3f}{ours.mean_return:>11.2f}"
        f"   every goal: {len(ours.tasks[0].explore_returns)} adaptation + "
        f"{len(ours.tasks[0].returns)} evaluation episodes of 500 steps",
        f"  {'Metaworld evaluator':<24}{official.success_rate:>8.3f}{official.mean_return:>11.2f}"
        f"   first {official.episodes} finished evaluation episodes per env class",
        f"  episodes Metaworld counted came from: {counted}",
        f"  per-goal success of all evaluation episodes in Metaworld's loop: {per_goal}",
        "  Metaworld's evaluator keys success by env class, not by goal, and ends an episode at "
        "its first success:",
        "  goals solved fast supply the counted episodes, so its success can exceed the per-goal "
        "rate, and its return",
        "  averages only the counted episodes, cut at success.",
    ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- ls


@cli.command("ls")
@click.argument("runs_dir", default="results/runs", required=False, metavar="[DIR]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run.")
def ls(runs_dir, as_json):
    """List the runs under DIR [default: results/runs]: env, algo, seed, status, env steps,
    the last meta-test's return and success, and size on disk.

    Status ``running`` means a live process writes the run now; ``stale`` means its
    status says running but no process holds it (killed: resume it).
    """
    from cocoa.runs import describe_run, find_runs

    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"no runs directory at {root}")
    rows = [describe_run(d) for d in find_runs(root)]
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo(f"no runs under {root}", err=True)
        return

    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    names = [str(Path(r["run_dir"]).relative_to(root)) if r["run_dir"] != str(root) else "."
             for r in rows]  # fmt: skip
    width = max(len("run"), *(len(n) for n in names))
    click.echo(
        f"{'run':<{width}}  {'env':<20}{'algo':<11}{'seed':>5}  {'status':<12}"
        f"{'env steps':>12}{'return':>10}{'success':>9}{'size':>11}"
    )
    for name, r in zip(names, rows):
        steps = "-" if r["env_steps"] is None else f"{r['env_steps']:,}"
        click.echo(
            f"{name:<{width}}  {r['env'] or '?':<20}{r['algo'] or '?':<11}"
            f"{cell(r['seed'], 'd'):>5}  {r['status']:<12}{steps:>12}"
            f"{cell(r['return'], '.2f'):>10}{cell(r['success'], '.3f'):>9}"
            f"{_size(r['bytes']):>11}"
        )


# ----------------------------------------------------------------------------------- bench


@cli.command("bench")
@click.option("--env", "env", default="reach", show_default=True, help="Task family to measure.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Sampler processes to compare with one.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Updates on: auto = CPU, and CUDA too when there is one.",
)
@click.option(
    "--preset",
    "presets",
    type=click.Choice(["quick", "paper"]),
    multiple=True,
    help="Presets of the update figures [default: both].",
)
@click.option(
    "--algo",
    "algos",
    multiple=True,
    help="Algorithms whose update is timed [default: all on quick; cocoa and pearl on paper].",
)
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    metavar="NAME",
    help="CoCOA objectives timed beside its default wherever cocoa is [default: every "
    "registered one; --objective trajectory: none besides].",
)
@click.option(
    "--only",
    type=click.Choice(["env", "update"]),
    default=None,
    help="Measure only env sampling or only updates.",
)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--episodes",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Episodes per timed block of env sampling.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the JSON report [default: results/bench/ENV-<time>.json].",
)
def bench(env, workers, device, presets, algos, objectives, only, repeats, episodes, json_path):
    """Measure env steps/s (bare, sampler, N workers) and gradient steps/s; print a table."""
    import time

    import torch

    from cocoa.algorithms import get_algorithm
    from cocoa.bench import SECTIONS, run_bench
    from cocoa.envs import get_family
    from cocoa.nets import resolve_device
    from cocoa.runs import prepare_output, write_json

    family = get_family(env)
    for algo in algos:
        get_algorithm(algo)  # unknown names fail here, before any measuring
    from cocoa.objectives import check_objective

    for objective in objectives:
        check_objective(objective)
    extra = tuple(o for o in objectives if o not in ("trajectory", "none")) if objectives else None
    if device == "auto":
        devices = [torch.device("cpu")]
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
    else:
        devices = [resolve_device(device)]
    path = Path(json_path or f"results/bench/{family.name}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    prepare_output(path)  # before measuring, not after
    torch.set_num_threads(1)  # as the runs use (RunConfig.threads)
    sections = (only,) if only else SECTIONS
    report = run_bench(
        family.name,
        workers,
        devices,
        tuple(presets) or ("quick", "paper"),
        tuple(algos) or None,
        sections,
        repeats,
        episodes,
        progress=lambda what: click.echo(f"measuring {what} ...", err=True),
        objectives=extra,
    )
    click.echo(report["table"])
    write_json(path, report)
    click.echo(f"wrote {path}", err=True)


# ---------------------------------------------------------------------------- entry point


def _interrupted(exc) -> None:
    """The one-line hint of a run stopped by SIGINT or SIGTERM, and its exit status."""
    click.echo(
        f"interrupted by {exc.signal}; resume with: cocoa meta-train --resume {exc.run_dir}",
        err=True,
    )
    sys.exit(EXIT_TERMINATED if exc.signal == "SIGTERM" else EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: user errors become one line and a non-zero exit."""
    from cocoa.runs import RunInterrupted, TrainingDiverged, os_error_message

    try:
        cli.main(args=argv, prog_name="cocoa", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code or EXIT_USAGE)
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt into Abort
        if isinstance(exc.__cause__, RunInterrupted):
            _interrupted(exc.__cause__)
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except RunInterrupted as exc:
        _interrupted(exc)
    except KeyboardInterrupt:
        click.echo("interrupted; continue with `cocoa meta-train --resume RUN_DIR`", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except TrainingDiverged as exc:
        click.echo(f"error: training diverged: {exc}", err=True)
        sys.exit(EXIT_DIVERGED)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:  # a file-system error (permissions, a full disk, a bad path)
        click.echo(f"error: {os_error_message(exc)}", err=True)
        sys.exit(EXIT_USAGE)


from cocoa.report_cli import register as _register_report  # noqa: E402

_register_report(cli)
