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


def test_file_systems_without_locks_fall_back_to_the_record(tmp_path, monkeypatch):
    import errno
    import fcntl

    from cocoa import runs

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    run = tmp_path / "run"
    lock = RunLock(run)
    message = lock.acquire()
    assert message.startswith("warning: the file system of") and "PID/host record" in message
    assert lock_holder(run)["pid"] == os.getpid()
    lock.release()
    assert lock_holder(run) is None
    # a record naming a live process on this host still refuses a second writer
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_FILE).write_text(
            json.dumps({"pid": proc.pid, "host": runs.socket.gethostname(), "time": 0})
        )
        with pytest.raises(RunLocked, match=f"PID {proc.pid} "):
            RunLock(run).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_whose_record_cannot_be_written_is_not_kept(tmp_path, monkeypatch):
    from cocoa import runs

    run = tmp_path / "run"

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left") as info:
        RunLock(run).acquire()
    monkeypatch.undo()
    # the error (kept here, with its frames) holds no open lock file
    lock_file = str((run / LOCK_FILE).resolve())
    fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
           if os.path.exists(f"/proc/self/fd/{fd}")]  # fmt: skip
    assert info.value is not None and lock_file not in fds
    proc = hold(run)  # another process gets the lock
    proc.kill()
    proc.wait()


def test_a_status_that_is_not_an_object_is_corrupt(tmp_path):
    from cocoa.runs import describe_run, read_status

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "status.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"corrupt .*status.json: a JSON list, not an object"):
        read_status(run)
    assert describe_run(run)["status"] == "corrupt"


def test_a_holder_that_is_still_exiting_is_waited_for(tmp_path):
    """A killed process stops counting as alive before the OS drops its flock (its last
    threads still hold its files): the next writer waits for the lock instead of refusing."""
    import socket
    import threading

    run = tmp_path / "run"
    proc = hold(run)  # holds the flock: the exiting process's last thread
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = {"pid": int(gone.stdout), "host": socket.gethostname(), "time": 0}
    (run / LOCK_FILE).write_text(json.dumps(dead))  # a record whose process no longer runs
    assert lock_holder(run) is None
    threading.Timer(0.5, proc.kill).start()
    lock = RunLock(run)
    try:
        message = lock.acquire()
    finally:
        proc.kill()
        proc.wait()
    assert message.startswith(f"took over the stale lock of PID {dead['pid']} on host")
    assert lock_holder(run)["pid"] == os.getpid()
    lock.release()


def test_a_live_holder_is_refused_at_once(tmp_path):
    import time

    run = tmp_path / "run"
    proc = hold(run)
    try:
        start = time.monotonic()
        with pytest.raises(RunLocked):
            RunLock(run).acquire()
        assert time.monotonic() - start < 5  # no wait: the holder runs
    finally:
        proc.kill()
        proc.wait()
