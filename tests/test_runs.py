"""Run-directory locks: one writer per run, stale records, readers that never block."""

import json
import os
import subprocess
import sys

import pytest

from cocoa.runs import LOCK_FILE, RunLock, RunLocked, lock_holder


def hold(run_dir):
    """A child process that holds the run's lock until killed."""
    code = (
        "import sys, time; from cocoa.runs import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"locked"
    return proc


def test_lock_is_exclusive_reentrant_and_released(tmp_path):
    run = tmp_path / "run"
    lock = RunLock(run)
    assert lock.acquire() is None
    assert lock_holder(run)["pid"] == os.getpid()
    assert RunLock(run).acquire() is None  # re-entrant within a process
    RunLock(run).release()
    assert lock_holder(run) is not None  # still held once
    lock.release()
    assert lock_holder(run) is None and (run / LOCK_FILE).read_text() == ""


def test_second_process_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    proc = hold(run)
    try:
        with pytest.raises(RunLocked, match=rf"in use by another cocoa process \(PID {proc.pid} "):
            RunLock(run).acquire()
        assert lock_holder(run)["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()
    # its record stays, but the process is gone: the next writer takes over and says so
    assert lock_holder(run) is None
    lock = RunLock(run)
    message = lock.acquire()
    assert message.startswith(f"took over the stale lock of PID {proc.pid} on host")
    lock.release()


def test_records_from_other_hosts(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    record = {"pid": 12345, "host": "elsewhere", "time": 0}
    (run / LOCK_FILE).write_text(json.dumps(record))
    assert lock_holder(run) == record  # cannot be checked from here: reported as held
    assert lock_holder(run, probe=True) is None  # nobody holds the OS lock: stale
    proc = hold(run)
    try:
        (run / LOCK_FILE).write_text(json.dumps(record))  # as if written on another node
        assert lock_holder(run, probe=True) == record
    finally:
        proc.kill()
        proc.wait()
