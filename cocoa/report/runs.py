"""Reading run directories: ``config.json``, ``status.json`` and ``progress.csv`` → ``Run``.

Reads files only (see ``cocoa.runs`` for their format); never imports training code or torch.
A corrupt file is one ``ValueError`` naming it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cocoa.runs import read_json, read_status

METRICS = {"return": "meta_test/return", "success": "meta_test/success"}
METRIC_LABELS = {"return": "meta-test return", "success": "meta-test success rate"}
REWARD_VERSIONS = ("v1", "v2")
DEFAULT_REWARD_VERSION = "v2"  # runs whose config.json predates the field used v2
METAWORLD_MULTI_TASK = ("ml10", "ml45")
#: The axes of the contrastive design space (thesis §4) an ablation varies, as ``Run`` reads
#: them from ``config.json``'s ``algo_config``.
AXES = ("objective", "augment", "similarity")
DEFAULT_OBJECTIVE = "trajectory"  # CoCOA runs whose config.json predates the field
DEFAULT_AUGMENT = ("crop",)  # likewise
#: The ``load_runs`` filter of each axis.
AXIS_FILTERS = {"objective": "objectives", "augment": "augments", "similarity": "similarities"}
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "results" / "reference"


@dataclass(eq=False)
class Run:
    """One run directory as reporting sees it.

    Attributes:
        path: the run directory.
        env, algo, seed: from ``config.json``.
        similarity: ``algo_config.similarity``; None for algorithms without one and where
            the contrastive term is off (``contrastive_weight == 0``: PEARL), which never
            use it.
        status: ``status.json``'s status (``missing`` when there is none).
        config: the whole ``config.json``.
        progress: ``progress.csv`` (empty frame when the run has not written a row yet).
    """

    path: Path
    env: str
    algo: str
    seed: int
    similarity: str | None
    status: str
    config: dict[str, Any]
    progress: pd.DataFrame = field(repr=False)

    def meta_tests(self, metric: str) -> pd.DataFrame:
        """Rows with a meta-test: columns ``env_steps`` and ``value``, sorted by env steps."""
        column = metric_column(metric)
        if column not in self.progress.columns:
            return pd.DataFrame({"env_steps": [], "value": []})
        rows = self.progress[["env_steps", column]].dropna()
        rows = rows.rename(columns={column: "value"}).sort_values("env_steps", kind="stable")
        return rows.reset_index(drop=True)

    def has_metric(self, metric: str) -> bool:
        """Whether ``progress.csv`` has the metric's column (success: Metaworld families)."""
        return metric_column(metric) in self.progress.columns or self.progress.empty

    def reached(self, metric: str) -> int | None:
        """Env steps of the last meta-test (None without any)."""
        rows = self.meta_tests(metric)
        return None if rows.empty else int(rows["env_steps"].iloc[-1])

    @property
    def objective(self) -> str | None:
        """The context objective: ``algo_config.objective``; ``none`` where the contrastive
        term is off (PEARL); ``trajectory`` (CoCOA's) for a CoCOA run whose config predates
        the field; None for algorithms without a context encoder."""
        algo_config = self.config.get("algo_config")
        if not isinstance(algo_config, dict):
            return None
        weight = algo_config.get("contrastive_weight")
        if weight is None and self.algo not in ("cocoa", "pearl"):
            return None  # no context objective to speak of (MAML, RL2, oracle-SAC)
        if weight == 0 or (weight is None and self.algo == "pearl"):
            return "none"
        objective = algo_config.get("objective", DEFAULT_OBJECTIVE)
        return objective if isinstance(objective, str) else None

    @property
    def augment(self) -> str | None:
        """The augmentations, ``+``-joined in order (``crop``, ``crop+noise``):
        ``algo_config.augment`` (absent: ``crop``), where they act, i.e. with a context
        objective or ``augment_context``; None elsewhere (PEARL without RAD's switch)."""
        objective = self.objective
        algo_config = self.config.get("algo_config")
        if objective is None or not isinstance(algo_config, dict):
            return None
        if objective == "none" and not algo_config.get("augment_context", False):
            return None
        names = algo_config.get("augment", DEFAULT_AUGMENT)
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            return None
        return "+".join(names)

    @property
    def augment_context(self) -> bool:
        """``algo_config.augment_context`` (RAD's switch; absent: False)."""
        algo_config = self.config.get("algo_config")
        return isinstance(algo_config, dict) and algo_config.get("augment_context") is True

    def axis_value(self, axis: str) -> str | None:
        """The run's value on an ablation axis (``AXES``); None where it has none."""
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r}; choose from {', '.join(AXES)}")
        return getattr(self, axis)

    @property
    def reward_version(self) -> str:
        """Metaworld's reward function the run trained with: ``config.json``'s
        ``reward_version`` (``v1``: the thesis's; absent: ``v2``, Metaworld's default)."""
        return str(self.config.get("reward_version", DEFAULT_REWARD_VERSION))

    @property
    def is_metaworld(self) -> bool:
        """Whether the env is a Metaworld family: its ``progress.csv`` records success
        (only Metaworld families do), or it is ML10/ML45 or an env of the thesis's Table 5.1
        (all Metaworld ML1)."""
        env = normalise_env(self.env)
        return (
            METRICS["success"] in self.progress.columns
            or env in METAWORLD_MULTI_TASK
            or env in _thesis_envs()
        )

    @property
    def finished(self) -> bool:
        """``status.json`` says ``finished``."""
        return self.status == "finished"


def metric_column(metric: str) -> str:
    """``progress.csv`` column of ``metric`` (``return`` or ``success``)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return METRICS[metric]


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every run directory (a folder with ``config.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no runs directory at {root}")
    if (root / "config.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("config.json") if "checkpoints" not in p.parts)


def _read_progress(path: Path) -> pd.DataFrame:
    """``progress.csv`` as numbers; ``ValueError`` naming the file when it is corrupt."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["iteration", "env_steps", METRICS["return"]])
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"corrupt {path}: {first}") from None
    missing = [c for c in ("iteration", "env_steps", METRICS["return"]) if c not in frame.columns]
    if missing:
        raise ValueError(f"corrupt {path}: no column {', '.join(missing)}")
    for column in frame.columns:
        try:
            frame[column] = pd.to_numeric(frame[column])
        except (ValueError, TypeError):
            raise ValueError(f"corrupt {path}: non-numeric value in column {column!r}") from None
    if frame["env_steps"].isna().any():
        raise ValueError(f"corrupt {path}: a row has no env_steps")
    return frame


def load_run(path: str | Path) -> Run:
    """Reads one run directory; ``ValueError`` with the path when a file is corrupt."""
    path = Path(path)
    config = read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ValueError(f"corrupt {path / 'config.json'}: not a JSON object")
    for key, kind in (("env", str), ("algo", str), ("seed", int)):
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            raise ValueError(f"corrupt {path / 'config.json'}: no valid {key!r}")
    version = config.get("reward_version", DEFAULT_REWARD_VERSION)
    if version not in REWARD_VERSIONS:
        raise ValueError(
            f"corrupt {path / 'config.json'}: reward_version {version!r} is not "
            f"{' or '.join(REWARD_VERSIONS)}"
        )
    algo_config = config.get("algo_config")
    similarity = None
    if isinstance(algo_config, dict) and algo_config.get("contrastive_weight", 1) != 0:
        similarity = algo_config.get("similarity")  # PEARL (no contrastive term) uses none
    return Run(
        path=path,
        env=config["env"],
        algo=config["algo"],
        seed=config["seed"],
        similarity=similarity if isinstance(similarity, str) else None,
        status=str(read_status(path).get("status", "missing")),
        config=config,
        progress=_read_progress(path / "progress.csv"),
    )


def read_runs(root: str | Path) -> list[Run]:
    """Every run under ``root``, unfiltered (``select_runs`` filters them)."""
    return [load_run(path) for path in find_run_dirs(root)]


def load_runs(root: str | Path, **filters) -> list[Run]:
    """Every run under ``root`` matching ``filters`` (those of ``select_runs``);
    ``ValueError`` when there is none."""
    return select_runs(read_runs(root), root, **filters)


def select_runs(
    read: Sequence[Run],
    root: str | Path,
    envs: Sequence[str] | None = None,
    algos: Sequence[str] | None = None,
    similarities: Sequence[str] | None = None,
    reward_versions: Sequence[str] | None = None,
    objectives: Sequence[str] | None = None,
    augments: Sequence[str] | None = None,
    augment_context: bool | None = None,
) -> list[Run]:
    """The runs of ``read`` (read from ``root``) matching the filters; ``ValueError`` naming
    ``root`` and the filters when there is none. ``reward_versions`` keeps Metaworld runs
    with those reward versions (other runs have no reward version and stay).
    ``similarities``, ``objectives`` and ``augments`` keep the runs whose value on that axis
    (``Run.axis_value``; augmentations ``+``-joined) is one of them; ``augment_context`` the
    runs with RAD's switch on (True) or off (False)."""
    env_set = {normalise_env(e) for e in envs} if envs else None
    runs = []
    for run in read:
        if env_set is not None and normalise_env(run.env) not in env_set:
            continue
        if algos and run.algo not in algos:
            continue
        if similarities and run.similarity not in similarities:
            continue
        if objectives and run.objective not in objectives:
            continue
        if augments and run.augment not in augments:
            continue
        if augment_context is not None and run.augment_context != augment_context:
            continue
        if reward_versions and run.is_metaworld and run.reward_version not in reward_versions:
            continue
        runs.append(run)
    if not runs:
        what = [
            f"{name} {', '.join(vals)}"
            for name, vals in (
                ("envs", envs),
                ("algos", algos),
                ("similarities", similarities),
                ("objectives", objectives),
                ("augmentations", augments),
                ("Metaworld reward versions", reward_versions),
            )
            if vals
        ]
        if augment_context is not None:
            what.append(f"augment_context {str(augment_context).lower()}")
        suffix = f" matching {'; '.join(what)}" if what else ""
        raise ValueError(f"no runs found under {root}{suffix}")
    return runs


def normalise_env(name: str) -> str:
    """Comparable env name: lower case, dashes, no ``-vN`` suffix (``Pick-place`` →
    ``pick-place``, ``reach-v3`` → ``reach``)."""
    name = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"-v\d+$", "", name)


@functools.cache
def _thesis_envs() -> frozenset[str]:
    """Env names of the thesis's Table 5.1 (normalised); empty when the file is absent."""
    path = REFERENCE_DIR / "thesis_table_5_1.csv"
    try:
        return frozenset(normalise_env(e) for e in pd.read_csv(path)["env"])
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return frozenset()


def reward_version_by_env(runs: Sequence[Run]) -> dict[str, str]:
    """env -> the reward version of its Metaworld runs; ``ValueError`` when an env's runs
    mix versions (their returns are on scales about 200x apart: one cell or curve must not
    pool them)."""
    seen: dict[str, dict[str, int]] = {}
    for r in runs:
        if r.is_metaworld:
            counts = seen.setdefault(r.env, {})
            counts[r.reward_version] = counts.get(r.reward_version, 0) + 1
    mixed = {env: counts for env, counts in seen.items() if len(counts) > 1}
    if mixed:
        env, counts = sorted(mixed.items())[0]
        parts = " and ".join(
            f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in sorted(counts.items())
        )
        raise ValueError(
            f"runs on {env} mix Metaworld reward versions {parts}, whose returns are not on "
            "one scale; choose one with --reward-version v1 or v2"
        )
    return {env: next(iter(counts)) for env, counts in sorted(seen.items())}


def reward_text(versions: dict[str, str]) -> str:
    """``Metaworld rewards v2`` (one version), ``Metaworld rewards v1 on reach; v2 on push``
    (several), ``""`` (no Metaworld env)."""
    by_version: dict[str, list[str]] = {}
    for env, version in sorted(versions.items()):
        by_version.setdefault(version, []).append(env)
    if not by_version:
        return ""
    if len(by_version) == 1:
        return f"Metaworld rewards {next(iter(by_version))}"
    return "Metaworld rewards " + "; ".join(
        f"{v} on {', '.join(envs)}" for v, envs in sorted(by_version.items())
    )


def fmt_steps(steps: float) -> str:
    """Env steps with thousands separators (``228000`` → ``228,000``)."""
    return f"{int(steps):,}"
