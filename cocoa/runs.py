"""Run-directory I/O: the only files reporting reads.

Layout of ``<out>/<env>/<algo>/<run-id>/``::

    config.json        the resolved RunConfig
    status.json        {"status": running|finished|failed|diverged, "env_steps", "iteration", ...}
    progress.csv       one row per iteration: iteration, env_steps, wall_time_s,
                       meta_test/return, meta_test/success (families with success), losses
    evals/NNNNNN.json  per-task evaluation records of each meta-test (NNNNNN = iteration)
    checkpoints/latest.pt
    log.txt
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_COLUMNS = ["iteration", "env_steps", "wall_time_s"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run's last checkpoint is the last good state."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temporary file and a rename: readers never see a
    partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    """Reads JSON; ``ValueError`` with the path on a missing or corrupt file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"missing {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"corrupt {path}: {exc}") from None


def run_dir_for(out: Path, env: str, algo: str, name: str) -> Path:
    """``<out>/<env>/<algo>/<name>``."""
    return Path(out) / env / algo / name


def default_run_name(seed: int) -> str:
    """``seed<seed>-<YYYYmmdd-HHMMSS>``."""
    return f"seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(run_dir: Path) -> None:
    """``ValueError`` unless ``run_dir`` looks like a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"no run directory at {run_dir}")
    if not (run_dir / "config.json").is_file():
        raise ValueError(f"{run_dir} is not a run directory (no config.json)")


def write_status(run_dir: Path, status: str, **extra: Any) -> None:
    """Records the run's state for sweeps and readers."""
    write_json(Path(run_dir) / "status.json", {"status": status, "time": time.time(), **extra})


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's ``status.json`` (``{"status": "missing"}`` when there is none)."""
    path = Path(run_dir) / "status.json"
    if not path.exists():
        return {"status": "missing"}
    return read_json(path)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


class ProgressWriter:
    """Appends rows to ``progress.csv``; columns are fixed by the first row.

    ``truncate(n_rows)`` cuts the file back to its first ``n_rows`` rows, which ``--resume``
    uses to drop rows written after the checkpoint it restarts from.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.columns: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as fh:
                self.columns = next(csv.reader(fh), None)

    def n_rows(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open(newline="") as fh:
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)

    def truncate(self, n_rows: int) -> None:
        if not self.path.exists():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        buf = io.StringIO()
        csv.writer(buf).writerows(rows[: n_rows + 1])
        atomic_write_bytes(self.path, buf.getvalue().encode())

    def write(self, row: dict[str, Any], columns: list[str]) -> None:
        if self.columns is None:
            self.columns = list(columns)
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"progress row has columns not in the header: {sorted(unknown)}")
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in self.columns])
            fh.flush()
