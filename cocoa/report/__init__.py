"""Reporting: run directories → tables, aggregate scores and learning curves.

Reads only run directories (``config.json``, ``status.json``, ``progress.csv``; see
``cocoa.runs``); never imports training code or torch. The package reads top to bottom in
this order:

* ``runs``: reading run directories into ``Run`` objects;
* ``stats``: bootstrap intervals, interquartile mean, probability of improvement;
* ``tables``: the comparison tables (thesis Table 5.1) and the ablations along an axis of
  the contrastive objective: objective, augmentations or similarity (Table 5.2);
* ``render``: Markdown, LaTeX and CSV;
* ``curves``: learning curves and their plots.

Statistics, stated once here and repeated in every table footer:

* **Score of a run at a budget of B env steps**: the meta-test metric of the *last* row of its
  ``progress.csv`` that has a meta-test and ``env_steps <= B``. A run whose last meta-test lies
  below B has not reached the budget and is left out of its cell (reported as such). The
  default budget is the largest one that every selected run reached, per environment (so a
  table that mixes point robots and Metaworld does not score Metaworld at a point-robot
  budget): on each environment, the smallest over its runs of each run's last meta-test env
  steps. ``--at-steps`` sets one budget for every environment.
* **Cell**: mean over seeds and a 95% percentile-bootstrap confidence interval of that mean:
  rliable's ``get_interval_estimates`` with ``metrics.aggregate_mean``, 2,000 resamples of
  the seeds with replacement, numpy's global generator seeded with 0 for every cell (and
  restored afterwards), so tables are reproducible. With one seed there is no interval. With
  few seeds the percentile bootstrap is coarse and tends to be too narrow: 3 seeds have only
  10 distinct resample means.
* **Aggregate row**: interquartile mean (rliable's ``aggregate_iqm``) of per-environment
  min-max normalised scores: on each environment, every run's score is mapped to [0, 1] by the
  minimum and maximum over all runs of all columns on that environment. Raw returns are not
  comparable across environments, so no aggregate of raw returns is given. Only environments
  where every column has runs count. The interval is rliable's stratified bootstrap (seeds
  resampled within each environment; 2,000 resamples, seed 0).
* **Probability of improvement** of CoCOA over PEARL: rliable's
  ``metrics.probability_of_improvement`` (Mann-Whitney U / (n_x n_y), ties count one half)
  averaged over environments, with the same stratified bootstrap for its interval.
* **Metaworld reward version**: ``config.json``'s ``reward_version`` (``v1``, the thesis's,
  or ``v2``; absent means ``v2``). Captions and plot titles name it; one cell or curve never
  pools both (``build_table`` refuses; filter with ``load_runs(reward_versions=...)``).
"""

from cocoa.report.curves import learning_curves, online_curves, plot_learning_curves
from cocoa.report.render import (
    MISSING,
    caption,
    render,
    render_csv,
    render_latex,
    render_markdown,
)
from cocoa.report.runs import (
    AXES,
    METRIC_LABELS,
    METRICS,
    Run,
    find_run_dirs,
    load_run,
    load_runs,
    metric_column,
    normalise_env,
)
from cocoa.report.stats import (
    AGGREGATE_RESAMPLES,
    BOOTSTRAP_SEED,
    CI_RESAMPLES,
    bootstrap_ci,
    iqm_with_ci,
    probability_of_improvement,
)
from cocoa.report.tables import (
    ALGO_LABELS,
    ALGO_ORDER,
    AXIS_LABELS,
    REFERENCE_DIR,
    REFERENCE_FILES,
    SIMILARITY_LABELS,
    Cell,
    ComparisonTable,
    build_table,
    column_key,
    column_label,
    read_reference,
)

__all__ = [
    "AGGREGATE_RESAMPLES",
    "ALGO_LABELS",
    "ALGO_ORDER",
    "AXES",
    "AXIS_LABELS",
    "BOOTSTRAP_SEED",
    "CI_RESAMPLES",
    "METRICS",
    "METRIC_LABELS",
    "MISSING",
    "REFERENCE_DIR",
    "REFERENCE_FILES",
    "SIMILARITY_LABELS",
    "Cell",
    "ComparisonTable",
    "Run",
    "bootstrap_ci",
    "build_table",
    "caption",
    "column_key",
    "column_label",
    "find_run_dirs",
    "iqm_with_ci",
    "learning_curves",
    "load_run",
    "load_runs",
    "metric_column",
    "normalise_env",
    "online_curves",
    "plot_learning_curves",
    "probability_of_improvement",
    "read_reference",
    "render",
    "render_csv",
    "render_latex",
    "render_markdown",
]
