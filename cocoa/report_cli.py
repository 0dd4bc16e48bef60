"""``cocoa sweep``, ``cocoa table``, ``cocoa ablate`` and ``cocoa plot``.

``register(cli)`` adds them to the ``cocoa`` group. Reading commands (table, ablate without
``--run``, plot) import only ``cocoa.report`` (ablate also a registry, to check the name of a
value that no run has); training code is imported by sweep workers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

DEFAULT_RUNS = "results/runs"


def _csv_list(ctx, param, value):
    from cocoa.sweep import parse_list

    return parse_list(value) or None


def _sweep_options(func):
    """Options shared by ``sweep`` and ``ablate --run``."""
    options = [
        click.option("--seeds", default="0,1,2", show_default=True, help="Seeds: 0,1,2 or 0-4."),
        click.option(
            "--steps",
            type=click.IntRange(min=0),
            default=None,
            help="Env-step budget of every run [default: the preset's].",
        ),
        click.option(
            "--preset",
            type=click.Choice(["auto", "paper", "quick"]),
            default="auto",
            show_default=True,
            help="auto = paper on CUDA, quick on CPU.",
        ),
        click.option("--protocol", default="thesis", show_default=True),
        click.option(
            "--reward-version",
            type=click.Choice(["v1", "v2"]),
            default="v2",
            show_default=True,
            help="Metaworld's reward function for every run (v1: the thesis's; Metaworld "
            "families only).",
        ),
        click.option(
            "--eval-interval",
            type=click.IntRange(min=1),
            default=None,
            help="Env steps between meta-tests of every run [default: the preset's].",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help="Resolved on this machine (see --gpus-per-run for Ray GPU workers).",
        ),
        click.option(
            "--set",
            "set_items",
            multiple=True,
            metavar="KEY=VALUE",
            help="Config override for every run, e.g. --set algo_config.kl_lambda=0.2 "
            "(repeatable; wins over --config).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(),
            default=None,
            help="JSON/YAML overrides for every run.",
        ),
        click.option(
            "--executor",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
        ),
        click.option(
            "--parallel",
            "workers",
            type=click.IntRange(min=0),
            default=1,
            show_default=True,
            help="Runs at once, each in its own local process (0: one after another in this "
            "process, for debugging). Not meta-train's --workers (sampler processes of one run).",
        ),
        click.option(
            "--ray-address",
            default=None,
            metavar="auto|HOST:PORT",
            help="Ray cluster to join [default: RAY_ADDRESS, else a local Ray].",
        ),
        click.option(
            "--cpus-per-run",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="Ray only; also each run's torch threads (local workers use 1).",
        ),
        click.option(
            "--gpus-per-run",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="Ray only; > 0 runs on device cuda on the workers.",
        ),
        click.option("--quiet", is_flag=True, help="No progress display."),
        click.option(
            "--objective",
            default=None,
            metavar="NAME",
            help="CoCOA's context objective for the cocoa runs (names them "
            "<objective>-seed<k>); see `cocoa objectives`.",
        ),
        click.option(
            "--augment",
            default=None,
            metavar="NAME[,NAME]",
            help="Augmentations for the runs they apply to; see `cocoa augmentations`.",
        ),
        click.option(
            "--augment-context",
            is_flag=True,
            help="Also augment PEARL's RL context (RAD), for cocoa and pearl runs.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _sweep(
    *,
    algos,
    envs,
    similarities,
    objective=None,
    augment=None,
    augment_context=False,
    objectives=None,
    augments=None,
    out,
    seeds,
    steps,
    preset,
    protocol,
    reward_version,
    eval_interval,
    device,
    set_items,
    config_file,
    executor,
    workers,
    ray_address,
    cpus_per_run,
    gpus_per_run,
    quiet,
    dry_run=False,
):
    """Expands, validates and runs a sweep; returns its ``SweepResult`` (None: dry run)."""
    from cocoa.config import load_overrides
    from cocoa.sweep import expand_grid, merge_overrides, parse_seeds, parse_set, plan

    if not envs:
        raise click.UsageError("--envs is required (e.g. --envs point-robot,sparse-point-robot)")
    if ray_address and executor != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    overrides = load_overrides(config_file) if config_file else {}
    overrides = merge_overrides(overrides, parse_set(set_items))
    if eval_interval is not None:
        overrides = merge_overrides(overrides, {"eval_interval": eval_interval})
    worker_device = None
    if executor == "ray" and gpus_per_run > 0:
        if device == "cpu":
            raise click.UsageError("--gpus-per-run > 0 with --device cpu wastes the GPUs")
        worker_device = "cuda"
    runs = expand_grid(
        algos=algos,
        envs=envs,
        seeds=parse_seeds(seeds),
        out=out,
        steps=steps,
        preset=preset,
        protocol=protocol,
        reward_version=reward_version,
        device=device,
        similarities=similarities,
        overrides=overrides or None,
        worker_device=worker_device,
        objective=objective,
        augment=augment,
        augment_context=augment_context,
        objectives=objectives,
        augments=augments,
    )
    if dry_run:
        for run, action in plan(runs):
            click.echo(f"{action:<8} {run.run_dir}")
        return None
    return _run_sweep(
        runs,
        quiet,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
    )


def _run_sweep(runs, quiet: bool, **kwargs):
    """``cocoa.sweep.run_sweep`` with the plan line on stderr; Ctrl-C ends it with the
    relaunch hint and exit status 130."""
    from cocoa.sweep import run_sweep

    try:
        return run_sweep(
            runs, progress=not quiet, echo=functools.partial(click.echo, err=True), **kwargs
        )
    except KeyboardInterrupt:
        click.echo("interrupted; relaunch the same command to resume the sweep", err=True)
        raise SystemExit(130) from None


def _finish_sweep(result) -> None:
    click.echo(result.summary(), err=True)
    if not result.ok:
        raise SystemExit(1)


@click.command()
@click.option(
    "--algos",
    default="cocoa,pearl",
    show_default=True,
    callback=_csv_list,
    help="Comma-separated algorithms.",
)
@click.option("--envs", callback=_csv_list, help="Comma-separated task families (required).")
@click.option(
    "--similarities",
    default=None,
    callback=_csv_list,
    help="CoCOA similarities to sweep (runs named <similarity>-seed<k>).",
)
@click.option(
    "--objectives",
    default=None,
    callback=_csv_list,
    help="CoCOA context objectives to sweep (runs named <objective>-seed<k>); the grid form "
    "of --objective.",
)
@click.option(
    "--augments",
    default=None,
    callback=_csv_list,
    help="Augmentations to sweep, a chain joined by + (crop,noise,crop+noise; runs named "
    "aug-<chain>-seed<k>); the grid form of --augment.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=DEFAULT_RUNS,
    show_default=True,
    help="Runs root: OUT/ENV/ALGO/seed<k>.",
)
@_sweep_options
@click.option("--dry-run", is_flag=True, help="Print what each run would do, run nothing.")
def sweep(**kwargs):
    """Run a grid of algorithms x envs x seeds (x objectives x augmentations x similarities),
    skipping finished runs and resuming killed ones. Exits 1 when a run failed or diverged."""
    result = _sweep(**kwargs)
    if result is not None:
        _finish_sweep(result)


def _table_options(func):
    options = [
        click.option(
            "--runs",
            "runs_dir",
            type=click.Path(file_okay=False),
            default=DEFAULT_RUNS,
            show_default=True,
            help="Runs root to read.",
        ),
        click.option("--envs", callback=_csv_list, help="Rows (comma-separated) [default: all]."),
        click.option(
            "--metric",
            type=click.Choice(["return", "success"]),
            default="return",
            show_default=True,
        ),
        click.option(
            "--at-steps",
            type=click.IntRange(min=0),
            default=None,
            help="Env-step budget: each run's last meta-test at <= this many steps "
            "[default: per env, the largest budget every run of the env reached].",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["markdown", "latex", "csv"]),
            default="markdown",
            show_default=True,
        ),
        click.option("--output", type=click.Path(dir_okay=False), default=None),
        click.option(
            "--reference",
            is_flag=True,
            help="Add the thesis's published numbers beside ours.",
        ),
        click.option(
            "--reference-file",
            type=click.Path(dir_okay=False),
            default=None,
            help="Published table to compare with [default: results/reference/...].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _emit_table(table, fmt: str, output: str | None) -> None:
    from cocoa.report import render

    text = render(table, fmt)
    if output:
        from cocoa.runs import prepare_output

        prepare_output(output).write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    if fmt != "markdown":
        for note in table.notes:
            click.echo(f"note: {note}", err=True)


def _reference(by: str, reference: bool, reference_file: str | None):
    from cocoa.report import REFERENCE_FILES, read_reference

    if not reference and not reference_file:
        return None
    return read_reference(reference_file or REFERENCE_FILES[by])


def _reward_version_filter(func):
    """``--reward-version`` of the reading commands: which Metaworld runs to read."""
    return click.option(
        "--reward-version",
        "reward_versions",
        type=click.Choice(["v1", "v2"]),
        multiple=True,
        help="Only Metaworld runs with this reward version (repeatable) [default: all; an env "
        "whose runs mix versions is refused].",
    )(func)


@click.command()
@click.option("--algos", callback=_csv_list, help="Columns (comma-separated) [default: all found].")
@_table_options
@_reward_version_filter
def table(
    runs_dir, envs, algos, metric, at_steps, fmt, output, reference, reference_file, reward_versions
):
    """Comparison table like thesis Table 5.1: envs x algorithms, mean [95% CI] over seeds
    at an env-step budget, best per row marked, IQM of normalised scores.

    With --reference, values are compared with the thesis only for Metaworld runs with v1
    rewards (the thesis's); for v2 runs the winner of CoCOA vs PEARL per row is compared."""
    from cocoa.report import build_table, load_runs

    runs = load_runs(runs_dir, envs=envs, algos=algos, reward_versions=reward_versions)
    result = build_table(
        runs,
        metric=metric,
        budget=at_steps,
        by="algo",
        envs=envs,
        columns=algos,
        reference=_reference("algo", reference, reference_file),
    )
    _emit_table(result, fmt, output)


AXIS_DEFAULT_VALUES = {"similarity": ["bhattacharyya", "bilinear"]}  # the thesis's Table 5.2
#: Each axis's example for the error that asks for --values.
_AXIS_EXAMPLES = {
    "objective": "trajectory,transition,masked (see `cocoa objectives`)",
    "augment": "crop,noise,crop+noise (see `cocoa augmentations`)",
}


def _ablation_axis(axis, values, similarities, objective, augment):
    """(axis, values) of ``cocoa ablate`` from ``--axis``/``--values`` or the old spelling
    ``--similarities`` (= ``--axis similarity --values``); augmentation chains normalised to
    ``a+b``. A conflicting or missing choice is a ``click.UsageError``."""
    if similarities:
        if axis not in (None, "similarity"):
            raise click.UsageError(
                f"--similarities is the similarity axis's values; with --axis {axis} give the "
                "values with --values"
            )
        if values:
            raise click.UsageError("give --values or --similarities, not both")
        axis, values = "similarity", similarities
    axis = axis or "similarity"
    if not values:
        if axis not in AXIS_DEFAULT_VALUES:
            raise click.UsageError(
                f"--axis {axis} needs --values, e.g. --values {_AXIS_EXAMPLES[axis]}"
            )
        values = AXIS_DEFAULT_VALUES[axis]
    if axis == "augment":
        values = _augment_chains(values)
    fixed = {"objective": objective, "augment": augment}
    if fixed.get(axis) is not None:
        raise click.UsageError(
            f"--{axis} fixes the {axis} of the runs; with --axis {axis} give its values with "
            "--values"
        )
    return axis, values


def _augment_chains(values):
    """Augmentation chains as runs name them, ``a+b`` (``a + b`` → ``a+b``; duplicates and
    empty chains dropped)."""
    from cocoa.sweep import parse_list

    values = list(dict.fromkeys("+".join(parse_list(v.replace("+", ","))) for v in values))
    return [v for v in values if v]


def _check_axis_values(axis, values, runs=()):
    """A value that no run has must at least be a registered name (``ValueError``, one line,
    from the registry); the thesis's values need no check (and no torch)."""
    have = {r.axis_value(axis) for r in runs}
    for value in values:
        if value in have or value in AXIS_DEFAULT_VALUES.get(axis, []):
            continue
        if axis == "objective":
            from cocoa.objectives import check_objective

            check_objective(value)
        elif axis == "augment":
            from cocoa.objectives import parse_augment

            parse_augment(value.replace("+", ","))
        else:
            from cocoa.contrastive import check_similarity

            check_similarity(value)


def _load_checked(read, runs_dir, axis_values, **filters):
    """``select_runs`` of ``read`` (the runs of ``runs_dir``) with each axis's values
    (``axis_values``: axis -> values) as that axis's filter besides ``filters``; a value that
    no read run has must be a registered name (``_check_axis_values``), so a misspelt one says
    so rather than "no runs"."""
    from cocoa.report.runs import AXIS_FILTERS, select_runs

    filters |= {AXIS_FILTERS[axis]: values for axis, values in axis_values.items()}
    try:
        runs = select_runs(read, runs_dir, **filters)
    except ValueError:
        for axis, values in axis_values.items():
            _check_axis_values(axis, values)
        raise
    for axis, values in axis_values.items():
        _check_axis_values(axis, values, runs)
    return runs


def _ablation_sweep(axis, values, envs, runs_dir, sweep_kwargs):
    """``ablate --run``: the sweep that makes every value's runs. An objective or augment
    value that is the default (CoCOA's objective; the objective's own augmentations) runs as
    the plain sweep names it (``seed<k>``, or ``<objective>-seed<k>``), so its runs are
    reused; objective ``none`` is PEARL, run as ``--algos pearl``."""
    if axis == "similarity":
        return _sweep(algos=["cocoa"], envs=envs, similarities=values, out=runs_dir, **sweep_kwargs)
    from cocoa.objectives import OBJECTIVE_REGISTRY, parse_augment
    from cocoa.pearl import PearlConfig

    default_objective = PearlConfig().objective
    if axis == "objective":
        algos = ["cocoa"] * any(v != "none" for v in values) + ["pearl"] * ("none" in values)
        objectives = [None if v == default_objective else v for v in values if v != "none"]
        return _sweep(
            algos=algos,
            envs=envs,
            similarities=None,
            objectives=objectives or None,
            out=runs_dir,
            **sweep_kwargs,
        )
    objective = sweep_kwargs["objective"] or default_objective
    default = OBJECTIVE_REGISTRY.get(objective).default_augment
    augments = [None if parse_augment(v.replace("+", ",")) == default else v for v in values]
    algos = ["cocoa"] if objective != "none" else ["pearl"]
    return _sweep(
        algos=algos,
        envs=envs,
        similarities=None,
        augments=augments,
        out=runs_dir,
        **sweep_kwargs,
    )


@click.command()
@click.option(
    "--axis",
    type=click.Choice(["objective", "augment", "similarity"]),
    default=None,
    help="The axis of the contrastive design space whose values are the columns "
    "[default: similarity].",
)
@click.option(
    "--values",
    default=None,
    callback=_csv_list,
    help="The axis's values to compare (comma-separated; an augmentation chain joined by +: "
    "crop+noise) [default for similarity: bhattacharyya,bilinear].",
)
@click.option(
    "--similarities",
    default=None,
    callback=_csv_list,
    help="Old spelling of --axis similarity --values S,T.",
)
@_table_options
@click.option(
    "--run",
    "do_run",
    is_flag=True,
    help="First run the missing runs of every value (a sweep into --runs; needs --envs).",
)
@_sweep_options
def ablate(
    runs_dir,
    envs,
    axis,
    values,
    similarities,
    metric,
    at_steps,
    fmt,
    output,
    reference,
    reference_file,
    do_run,
    **sweep_kwargs,
):
    """Ablation like thesis Table 5.2 along one axis of the contrastive objective: envs x
    the axis's values (objectives, augmentations or similarities), mean [95% CI] over seeds,
    with "X beats Y on k out of N envs" lines.

    --objective, --augment and --augment-context hold the other axes fixed: only runs with
    those choices are read (and --run makes them). Without --objective, a similarity or
    augment ablation reads CoCOA's own objective (trajectory); without --augment-context,
    runs with RAD's switch on are left out. Objective `none` is PEARL."""
    from cocoa.report import build_table
    from cocoa.report.runs import DEFAULT_OBJECTIVE, read_runs
    from cocoa.sweep import parse_list

    objective, augment = sweep_kwargs["objective"], sweep_kwargs["augment"]
    axis, values = _ablation_axis(axis, values, similarities, objective, augment)
    if (reference or reference_file) and axis != "similarity":
        raise click.UsageError(
            "--reference: the thesis publishes an ablation of the similarity only (Table 5.2)"
        )
    if do_run:
        _check_axis_values(axis, values)
        result = _ablation_sweep(axis, values, envs, runs_dir, sweep_kwargs)
        click.echo(result.summary(), err=True)
    # the other axes held fixed: as given, else CoCOA's objective (so a similarity or
    # augment ablation never pools another objective's runs) and any augmentations
    filters = {
        "objectives": [objective or DEFAULT_OBJECTIVE],
        "augments": ["+".join(parse_list(augment))] if augment else None,
        "similarities": None,
        "augment_context": sweep_kwargs["augment_context"],
        "algos": ["cocoa"] if axis == "similarity" else None,
    }
    runs = _load_checked(read_runs(runs_dir), runs_dir, {axis: values}, envs=envs, **filters)
    result_table = build_table(
        runs,
        metric=metric,
        budget=at_steps,
        by=axis,
        envs=envs,
        columns=values,
        reference=_reference(axis, reference, reference_file),
    )
    _emit_table(result_table, fmt, output)
    if do_run and not result.ok:
        raise SystemExit(1)


@click.command()
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_RUNS,
    show_default=True,
)
@click.option("--envs", callback=_csv_list, help="Panels (comma-separated) [default: all].")
@click.option("--algos", callback=_csv_list, help="Algorithms [default: all].")
@click.option(
    "--objectives",
    callback=_csv_list,
    help="Only runs with these context objectives (see `cocoa objectives`; none: PEARL).",
)
@click.option(
    "--augments",
    callback=_csv_list,
    help="Only runs with these augmentations (a chain joined by +: crop+noise).",
)
@click.option("--similarities", callback=_csv_list, help="Only runs with these similarities.")
@click.option(
    "--metric",
    type=click.Choice(["return", "success", "both"]),
    default="both",
    show_default=True,
    help="both: return panels, and success-rate panels below them for Metaworld envs.",
)
@_reward_version_filter
@click.option(
    "--hue",
    type=click.Choice(["algo", "objective", "augment", "similarity"]),  # curves.HUES
    default="algo",  # curves.DEFAULT_HUE
    show_default=True,
    help="One colour per algorithm, or per value of an axis of the contrastive objective; "
    "runs without a value on the axis are left out of the curves.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default="results/plots/learning_curves.png",
    show_default=True,
    help="Writes STEM.png and STEM.pdf.",
)
@click.option(
    "--online",
    is_flag=True,
    help="PEARL's online curve (return by trajectory of the last --protocol pearl meta-test).",
)
def plot(
    runs_dir,
    envs,
    algos,
    objectives,
    augments,
    similarities,
    metric,
    reward_versions,
    hue,
    output,
    online,
):
    """Learning curves: meta-test metric vs env steps, mean and 95% CI band across seeds,
    one panel per env (return, then success rate where recorded). With oracle-SAC runs, an
    aggregate panel: IQM over envs of the score normalised between the untrained run (0)
    and oracle-SAC (1), with rliable's interval. × marks the end of a curve with an
    unfinished run.

    --hue objective, augment or similarity: one colour per value of that axis of the
    contrastive objective; runs without one (oracle-SAC, MAML, RL2; PEARL for augment
    without RAD's switch) are left out of the curves. --objectives, --augments and
    --similarities keep the runs with those values; oracle-SAC, which has no value on any
    axis, is still read (unless --algos leaves it out) and normalises the aggregate panel."""
    import matplotlib

    matplotlib.use("Agg")
    from cocoa.report import plot_learning_curves
    from cocoa.report.curves import ORACLE
    from cocoa.report.runs import read_runs, select_runs
    from cocoa.runs import prepare_output

    prepare_output(output)  # an unwritable path: one line, before any work
    axis_values = {
        axis: values
        for axis, values in (
            ("objective", objectives),
            ("augment", _augment_chains(augments) if augments else None),
            ("similarity", similarities),
        )
        if values
    }
    common = {"envs": envs, "reward_versions": reward_versions}
    read = read_runs(runs_dir)
    runs = _load_checked(read, runs_dir, axis_values, algos=algos, **common)
    if axis_values and (not algos or ORACLE in algos):
        # an axis filter drops oracle-SAC (it has no axis value); the aggregate panel needs it
        runs += [r for r in select_runs(read, runs_dir, **common) if r.algo == ORACLE]
    written, notes = plot_learning_curves(
        runs, output, metric=metric, hue=hue, envs=envs, online=online
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo("wrote " + ", ".join(str(p) for p in written))


@click.command()
@click.argument("set_name", metavar="SET", required=False)
@click.option("--list", "list_sets", is_flag=True, help="List the sets and exit.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="results/reproduce",
    show_default=True,
    help="The runs go to OUT/SET/<env>/<algo>/seed<N>; a relaunch resumes them.",
)
@click.option("--seeds", default="0", show_default=True, help="New seeds to run: 0 or 0,1,2.")
@click.option(
    "--parallel", "workers", type=click.IntRange(min=1), default=2, show_default=True,
    help="Runs at once, each in its own process.",
)  # fmt: skip
@click.option(
    "--check-only", is_flag=True, help="Score the runs already under --out; train nothing."
)
@click.option(
    "--record",
    metavar="SOURCE",
    help="Write SET's reference file from the finished runs under --out, citing SOURCE.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def reproduce(set_name, list_sets, out, seeds, workers, check_only, record, quiet):
    """Run a known-answer set and check each algorithm against its reference band.

    Prints one row per algorithm (score, 95% prediction band from the reference seeds, pass
    or fail) and plots the curves beside the reference; exits 1 when a row fails."""
    from cocoa import reproduce as rep
    from cocoa.report import load_runs

    if list_sets or not set_name:
        for s in rep.SETS.values():
            click.echo(f"{s.name:<20}{s.description}; {', '.join(s.algos)}; {s.steps:,} env steps")
        if not list_sets:
            click.echo("choose one: cocoa reproduce SET", err=True)
        return
    s = rep.get_set(set_name)
    root = Path(out) / s.name
    if record:
        rep.record_reference(s, root, record)
        click.echo(f"wrote {s.reference_path}")
        return
    rep.read_reference(s)  # no reference: one line before anything runs
    if not check_only:
        from cocoa.sweep import expand_grid, parse_seeds

        runs = expand_grid(
            algos=list(s.algos),
            envs=[s.env],
            seeds=parse_seeds(seeds),
            out=root,
            steps=s.steps,
            preset=s.preset,
            protocol=s.protocol,
            device="cpu",
        )
        result = _run_sweep(runs, quiet, workers=workers)
        if not result.ok:
            click.echo(result.summary(), err=True)
    rows = rep.check(s, root)
    seeds = sorted({r.seed for r in load_runs(root, envs=[s.env], algos=list(s.algos))})
    click.echo(rep.render(s, rows, rep.scripted_bounds(s, seeds)))
    written = rep.plot(s, root, root / "reproduce.png")
    click.echo("wrote " + ", ".join(str(p) for p in written))
    if not all(r.passed for r in rows):
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Adds ``sweep``, ``table``, ``ablate``, ``plot`` and ``reproduce`` to the ``cocoa``
    command group."""
    for command in (sweep, table, ablate, plot, reproduce):
        group.add_command(command)
