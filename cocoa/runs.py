"""Run-directory I/O: the only files reporting reads.

Layout of ``<out>/<env>/<algo>/<run-id>/``::

    config.json        the resolved RunConfig
    status.json        {"status": running|finished|failed|diverged, "env_steps", "iteration", ...}
    progress.csv       one row per iteration: iteration, env_steps, wall_time_s,
                       meta_test/return, meta_test/success (families with success), losses
    evals/NNNNNN.json  per-task evaluation records of each meta-test (NNNNNN = iteration)
    checkpoints/latest.pt
    checkpoints/policy.pt  the acting networks' weights only
    log.txt
    lock               {"pid", "host", "time"} of the process writing the run (``RunLock``)
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_COLUMNS = ["iteration", "env_steps", "wall_time_s"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run's last checkpoint is the last good state."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM (``signal``) after recording ``interrupted`` in
    ``run_dir``'s status; resume it with ``cocoa meta-train --resume run_dir``."""

    def __init__(self, run_dir: Path, signal: str):
        super().__init__(f"{signal}: {run_dir}")
        self.run_dir, self.signal = Path(run_dir), signal


class RunLocked(ValueError):
    """Another live process writes the run directory (``holder``: its lock record)."""

    def __init__(self, message: str, holder: dict[str, Any]):
        super().__init__(message)
        self.holder = holder


LOCK_FILE = "lock"
# flock errors of a file system that does not lock files: the record alone guards the run
NO_FLOCK = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL}
_HELD: dict[Path, list] = {}  # run dir -> [open lock file, depth] held by this process


def _proc_stat(pid: int, group: int | None = None) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` (of thread ``pid`` of process ``group``)
    from ``/proc`` (None where unavailable)."""
    where = f"/proc/{group}/task/{pid}/stat" if group is not None else f"/proc/{pid}/stat"
    try:
        text = Path(where).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (command) "
    return fields[0], fields[19]


def _pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host: it exists, is not a zombie (a killed
    process its parent has not reaped yet holds no lock), and, when ``start`` is given,
    started at that time (so a recycled PID does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    stat = _proc_stat(pid)
    if stat is None:  # without /proc its existence is all we know; with it, it just ended
        return not Path("/proc/self/stat").exists()
    state, started = stat
    if start is not None and started != start:
        return False
    if state not in ("Z", "X"):
        return True
    # A killed multi-threaded process shows its leader as a zombie while its other threads
    # still exit, and those hold its files (and its flock) until the last one is gone.
    try:
        threads = [t.name for t in Path(f"/proc/{pid}/task").iterdir() if t.name != str(pid)]
    except OSError:
        return False
    return any(
        (s := _proc_stat(int(t), pid)) is not None and s[0] not in ("Z", "X") for t in threads
    )


def _read_lock_record(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe_holder(record: dict[str, Any]) -> str:
    since = record.get("time")
    when = f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
    return f"PID {record.get('pid', '?')} on host {record.get('host', '?')}{when}"


def lock_holder(run_dir: Path, probe: bool = False) -> dict[str, Any] | None:
    """The lock record of the process that writes ``run_dir`` now, or None.

    Read without taking the lock (a reader never blocks a writer): a record whose PID no
    longer runs on this host is stale and gives None. A record from another host is
    reported as held, since its liveness cannot be checked from here, unless ``probe``: then
    the OS lock itself is tried for an instant (for a caller about to write the run anyway,
    such as a sweep planning a resume).
    """
    path = Path(run_dir) / LOCK_FILE
    record = _read_lock_record(path)
    if not record.get("pid"):
        return None
    if record.get("host") == socket.gethostname():
        return record if _pid_alive(int(record["pid"]), record.get("start")) else None
    if probe and Path(run_dir).resolve() not in _HELD:
        try:
            with open(path, "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        except OSError:
            return record
        return None
    return record


class RunLock:
    """Exclusive lock on a run directory for one writer: ``<run_dir>/lock`` holds the
    writer's PID, host and start time, and an ``fcntl.flock`` on it is the lock itself
    (the OS drops it when the process dies, however it dies).

    ``acquire()`` raises ``RunLocked`` (a ``ValueError``: one line naming the holder) when
    another process holds it, and returns a message when it took over a stale record (a
    writer that ended without releasing: killed, crashed), else None. Re-entrant within a
    process. Use as a context manager or call ``release()``.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir).resolve()
        self.path = self.run_dir / LOCK_FILE
        self.message: str | None = None

    def acquire(self) -> str | None:
        held = _HELD.get(self.run_dir)
        if held is not None:
            held[1] += 1
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115  (kept open while the lock is held)
        try:
            return self._take(fh)
        except BaseException:
            fh.close()  # a lock taken but not recorded must not stay held
            raise

    def _take(self, fh) -> str | None:
        notes = []
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in NO_FLOCK:  # a file system without locks (some Lustre, NFS)
                notes.append(self._record_only(exc))
            elif exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            elif not self._wait_for_dying_holder(fh):
                record = _read_lock_record(self.path)
                raise RunLocked(
                    f"{self.run_dir} is in use by another cocoa process "
                    f"({_describe_holder(record)}); wait for it to end or stop it",
                    record,
                ) from None
        previous = _read_lock_record(self.path)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        stat = _proc_stat(os.getpid())
        if stat is not None:
            mine["start"] = stat[1]
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(mine) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
        _HELD[self.run_dir] = [fh, 1]
        if previous.get("pid") and previous.get("pid") != os.getpid():
            gone = "which no longer runs" if previous.get("host") == mine["host"] else "not held"
            notes.append(f"took over the stale lock of {_describe_holder(previous)} ({gone})")
        return "; ".join(notes) or None

    def _wait_for_dying_holder(self, fh, seconds: float = 30.0) -> bool:
        """Takes the flock once the holder named by the record, a process of this host that
        no longer runs, has finished exiting (its last threads still hold its files for a
        moment after it is killed). False at once for a live or unknown holder, or when the
        flock stays held for ``seconds``."""
        deadline = time.monotonic() + seconds
        while lock_holder(self.run_dir) is None and _read_lock_record(self.path).get("pid"):
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return False

    def _record_only(self, exc: OSError) -> str:
        """Without OS locks, the PID/host record alone guards the run: refused while it
        names a live process (any record from another host counts as live)."""
        record = _read_lock_record(self.path)
        if lock_holder(self.run_dir) is not None:
            raise RunLocked(
                f"{self.run_dir} is in use by another cocoa process "
                f"({_describe_holder(record)}); wait for it to end or stop it",
                record,
            ) from None
        return (
            f"warning: the file system of {self.path} does not lock files "
            f"({exc.strerror or exc}); only the PID/host record guards the run"
        )

    def release(self) -> None:
        held = _HELD.get(self.run_dir)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[self.run_dir]
        fh = held[0]
        try:
            fh.seek(0)
            fh.truncate()  # an empty record: nobody holds the run
        except OSError:
            pass
        finally:
            fh.close()  # drops the flock

    def __enter__(self) -> RunLock:
        self.message = self.acquire()  # a stale takeover or a warning, else None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


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


def os_error_message(exc: OSError) -> str:
    """One line for a file-system error: what failed, and on which path."""
    what = exc.strerror or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    if isinstance(exc, FileExistsError | NotADirectoryError) and paths:
        blocking = next((q for q in Path(paths[0]).parents if q.is_file()), None)
        if Path(paths[0]).is_file() or blocking is not None:
            where = blocking or paths[0]
            return f"cannot use {paths[0]}: {where} is a file, not a folder"
    return f"{what}: " + " -> ".join(str(p) for p in paths) if paths else f"{what}: {exc}"


def prepare_output(path: str | Path) -> Path:
    """Creates the folder of an output file and checks that the file can be written there;
    ``ValueError`` with one line (naming the path and the reason) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder of {path}: {os_error_message(exc)}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {path}: permission denied")
    return path


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
    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"corrupt {path}: a JSON {type(record).__name__}, not an object")
    return record


def append_log(run_dir: Path, message: str) -> None:
    """Appends a time-stamped line to the run's ``log.txt``."""
    with (Path(run_dir) / "log.txt").open("a") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


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


def last_meta_test(run_dir: Path, rows: int | None = None) -> dict[str, Any] | None:
    """``{"return", "success" (families with success), "env_steps"}`` of the last meta-test
    among the first ``rows`` rows of ``progress.csv`` (all rows when None); None when there
    is none."""
    path = Path(run_dir) / "progress.csv"
    last = None
    try:
        with path.open(newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                if rows is not None and i >= rows:
                    break
                if row.get("meta_test/return"):
                    last = row
    except (OSError, csv.Error):
        return None
    if last is None:
        return None
    try:
        out: dict[str, Any] = {
            "return": float(last["meta_test/return"]),
            "env_steps": int(last["env_steps"]),
        }
        if last.get("meta_test/success"):
            out["success"] = float(last["meta_test/success"])
    except (KeyError, TypeError, ValueError):
        return None
    return out


def disk_usage(path: Path) -> int:
    """Bytes of the files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def find_runs(root: Path) -> list[Path]:
    """Run directories (those with a ``config.json``) at or under ``root``, sorted."""
    root = Path(root)
    if (root / "config.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("config.json") if p.is_file())


def describe_run(run_dir: Path) -> dict[str, Any]:
    """One line's worth of a run for ``cocoa ls``: env, algo, seed, name, status (``running``
    only while a live process holds the run; ``stale`` when it says running but none does),
    env steps, the last meta-test's return and success, bytes on disk and the lock holder."""
    run_dir = Path(run_dir)
    try:
        config = read_json(run_dir / "config.json")
    except ValueError:
        config = {}
    config = config if isinstance(config, dict) else {}
    try:
        status = read_status(run_dir)
    except ValueError:
        status = {"status": "corrupt"}
    holder = lock_holder(run_dir)
    state = status.get("status", "missing")
    if holder is not None:
        state = "running"
    elif state == "running":
        state = "stale"
    last = last_meta_test(run_dir) or {}
    env_steps = status.get("env_steps")
    rows_path = run_dir / "progress.csv"
    if rows_path.exists():
        try:
            with rows_path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if len(rows) > 1:
                env_steps = int(rows[-1][1])
        except (OSError, csv.Error, IndexError, ValueError):
            pass
    return {
        "run_dir": str(run_dir),
        "env": config.get("env"),
        "algo": config.get("algo"),
        "seed": config.get("seed"),
        "status": state,
        "env_steps": env_steps,
        "budget": config.get("steps"),
        "return": last.get("return"),
        "success": last.get("success"),
        "bytes": disk_usage(run_dir),
        "holder": holder,
    }
