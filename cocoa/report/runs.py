"""Reading run directories: ``config.json``, ``status.json`` and ``progress.csv`` → ``Run``.

Reads files only (see ``cocoa.runs`` for their format); never imports training code or torch.
A corrupt file is one ``ValueError`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cocoa.runs import read_json, read_status

METRICS = {"return": "meta_test/return", "success": "meta_test/success"}
METRIC_LABELS = {"return": "meta-test return", "success": "meta-test success rate"}


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


def load_runs(
    root: str | Path,
    envs: Sequence[str] | None = None,
    algos: Sequence[str] | None = None,
    similarities: Sequence[str] | None = None,
) -> list[Run]:
    """Every run under ``root`` matching the filters; ``ValueError`` when there is none."""
    dirs = find_run_dirs(root)
    env_set = {normalise_env(e) for e in envs} if envs else None
    runs = []
    for path in dirs:
        run = load_run(path)
        if env_set is not None and normalise_env(run.env) not in env_set:
            continue
        if algos and run.algo not in algos:
            continue
        if similarities and run.similarity not in similarities:
            continue
        runs.append(run)
    if not runs:
        what = [
            f"{name} {', '.join(vals)}"
            for name, vals in (("envs", envs), ("algos", algos), ("similarities", similarities))
            if vals
        ]
        suffix = f" matching {'; '.join(what)}" if what else ""
        raise ValueError(f"no runs found under {root}{suffix}")
    return runs


def normalise_env(name: str) -> str:
    """Comparable env name: lower case, dashes, no ``-vN`` suffix (``Pick-place`` →
    ``pick-place``, ``reach-v3`` → ``reach``)."""
    name = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"-v\d+$", "", name)


def fmt_steps(steps: float) -> str:
    """Env steps with thousands separators (``228000`` → ``228,000``)."""
    return f"{int(steps):,}"
