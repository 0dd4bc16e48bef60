"""The command line as a user meets it: runs, determinism, kill and resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TINY = {
    "eval_interval": 300,
    "algo_config": {
        "net_size": 32,
        "n_layers": 2,
        "encoder_hidden": [32],
        "batch_size": 32,
        "meta_batch": 4,
        "num_initial_steps": 20,
        "num_tasks_sample": 4,
        "num_steps_prior": 40,
        "num_extra_rl_steps_posterior": 40,
        "num_train_steps_per_itr": 20,
        "embedding_batch_size": 16,
        "contrastive_batch": 8,
        "crop_window": 8,
    },
}


def cocoa(*args, check=False, **kwargs):
    proc = subprocess.run(
        [sys.executable, "-m", "cocoa", *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def train_args(out, name, cfg, steps=3000, algo="cocoa"):
    return [
        "meta-train",
        "--env",
        "point-robot",
        "--algo",
        algo,
        "--steps",
        str(steps),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--name",
        name,
        "--quiet",
        "--device",
        "cpu",
    ]


def progress(run_dir):
    return pd.read_csv(Path(run_dir) / "progress.csv").drop(columns=["wall_time_s"])


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("runs")
    proc = cocoa(*train_args(out, "a", tiny_config), check=True)
    assert "final meta-test return" in proc.stdout
    return out / "point-robot" / "cocoa" / "a"


def test_run_directory_contents(reference_run):
    run = reference_run
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["algo"] == "cocoa" and cfg["algo_config"]["similarity"] == "bhattacharyya"
    assert cfg["algo_config"]["net_size"] == 32 and cfg["preset"] == "quick"
    df = pd.read_csv(run / "progress.csv")
    for col in [
        "iteration",
        "env_steps",
        "wall_time_s",
        "meta_test/return",
        "qf_loss",
        "vf_loss",
        "policy_loss",
        "kl",
        "contrastive_loss",
    ]:
        assert col in df.columns
    assert df["iteration"].tolist() == list(range(len(df)))
    assert df["env_steps"].is_monotonic_increasing and df["env_steps"].iloc[-1] >= 3000
    assert df["meta_test/return"].notna().sum() >= 3  # untrained, periodic and final
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    evals = sorted((run / "evals").glob("*.json"))
    assert len(evals) == df["meta_test/return"].notna().sum()
    record = json.loads(evals[-1].read_text())
    assert len(record["tasks"]) == 20 and len(record["tasks"][0]["returns"]) == 3
    assert (run / "checkpoints" / "latest.pt").is_file()


def test_same_seed_same_progress_with_any_number_of_workers(tmp_path, reference_run, tiny_config):
    # the reference run collected in process; this one on two sampler processes
    cocoa(*train_args(tmp_path, "b", tiny_config), "--workers", "2", check=True)
    pd.testing.assert_frame_equal(
        progress(reference_run), progress(tmp_path / "point-robot" / "cocoa" / "b")
    )


def test_sigkill_then_resume_continues_the_same_run(tmp_path, reference_run, tiny_config):
    run = tmp_path / "point-robot" / "cocoa" / "k"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cocoa", *train_args(tmp_path, "k", tiny_config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    # wait for a checkpoint past the first meta-test, then kill without warning
    while time.time() < deadline:
        status = run / "status.json"
        if status.exists() and json.loads(status.read_text()).get("iteration", 0) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((run / "status.json").read_text())["status"] == "running"
    rows_at_kill = len(pd.read_csv(run / "progress.csv"))
    assert rows_at_kill < len(progress(reference_run))
    resumed = cocoa("meta-train", "--resume", str(run), "--quiet", check=True)
    assert "final meta-test return" in resumed.stdout
    # the killed process left its lock record: the next writer takes it over and says so
    assert f"took over the stale lock of PID {proc.pid} on host" in (run / "log.txt").read_text()
    pd.testing.assert_frame_equal(progress(reference_run), progress(run))
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_meta_test_command(reference_run):
    proc = cocoa("meta-test", str(reference_run), "--json", check=True)
    data = json.loads(proc.stdout)
    assert len(data["tasks"]) == 20 and "meta_test/return" in data
    last = pd.read_csv(reference_run / "progress.csv")["meta_test/return"].dropna().iloc[-1]
    # same checkpoint, same evaluation seed: the same number as the last logged meta-test
    assert data["meta_test/return"] == pytest.approx(last, rel=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["meta-train", "--env", "reachh"], "unknown task family 'reachh'"),
        (["meta-train", "--env", "point-robot", "--algo", "pearll"], "did you mean pearl"),
        (["meta-train", "--env", "point-robot", "--similarity", "bhatta"], "unknown similarity"),
        (
            ["meta-train", "--env", "point-robot", "--algo", "pearl", "--similarity", "bilinear"],
            "applies to --algo cocoa",
        ),
        (["meta-train", "--env", "point-robot", "--steps", "-5"], "must be >= 0"),
        (["meta-train", "--env", "point-robot", "--steps", "many"], "not a valid integer"),
        (["meta-train", "--env", "point-robot", "--protocol", "metaworld-v3"], "Metaworld"),
        (["meta-train"], "--env is required"),
        (["meta-train", "--env", "point-robot", "--workers", "0"], "--workers"),
        (
            ["meta-train", "--env", "point-robot", "--algo", "maml-trpo", "--workers", "2"],
            "--workers applies to cocoa and pearl",
        ),
        (["meta-train", "--resume", "/nonexistent/run"], "no run directory"),
        (["meta-test", "/nonexistent/run"], "no run directory"),
        (["envs", "--show", "reachh"], "unknown task family"),
        (
            ["meta-train", "--env", "reach", "--steps", "5"],
            "collects 24,000 env steps in its first",
        ),
        (["meta-train", "--env", "point-robot", "--steps", "100"], "use --steps 8800 or more"),
        (["meta-train", "--env", "point-robot", "--set", "threads"], "bad --set 'threads'"),
        (["meta-train", "--env", "point-robot", "--compact"], "--compact needs --resume"),
        (["meta-train", "--env", "point-robot", "--set", "threads=0"], "threads must be >= 1"),
        (
            ["meta-train", "--env", "point-robot", "--reward-version", "v1"],
            "reward version v1 applies to Metaworld families only",
        ),
        (["meta-train", "--env", "reach", "--reward-version", "v3"], "'v3' is not one of"),
        (
            ["meta-train", "--env", "point-robot", "--set", "reward_version=v1"],
            "Metaworld families only",
        ),
        (
            ["sweep", "--envs", "reach,point-robot", "--reward-version", "v1", "--dry-run"],
            "Metaworld families only",
        ),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path):
    proc = (
        cocoa(*args, "--out", str(tmp_path))
        if args[0] == "meta-train" and "--resume" not in args
        else cocoa(*args)
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not any(tmp_path.iterdir())  # nothing was written


def test_corrupt_run_directories(tmp_path, reference_run):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    proc = cocoa("meta-test", str(bad))
    assert proc.returncode != 0 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    # a run whose checkpoint is damaged: the error names it and the file stays as it was
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((reference_run / "config.json").read_text())
    (broken / "checkpoints").mkdir()
    (broken / "checkpoints" / "latest.pt").write_bytes(b"garbage")
    for args in (["meta-test", str(broken)], ["meta-train", "--resume", str(broken)]):
        proc = cocoa(*args)
        assert proc.returncode != 0 and "corrupt checkpoint" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert (broken / "checkpoints" / "latest.pt").read_bytes() == b"garbage"


def test_existing_run_is_not_overwritten(reference_run, tiny_config):
    before = (reference_run / "progress.csv").read_text()
    proc = cocoa(*train_args(reference_run.parents[2], "a", tiny_config))
    assert proc.returncode != 0 and "already holds a run" in proc.stderr
    assert (reference_run / "progress.csv").read_text() == before


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"algo_config": {"kl_lambdaa": 1}}))
    proc = cocoa(
        "meta-train", "--env", "point-robot", "--config", str(cfg), "--out", str(tmp_path / "o")
    )
    assert proc.returncode != 0 and "unknown config key 'algo_config.kl_lambdaa'" in proc.stderr
    cfg.write_text(json.dumps({"algo_config": {"meta_batch": "x"}}))
    proc = cocoa(
        "meta-train", "--env", "point-robot", "--config", str(cfg), "--out", str(tmp_path / "o")
    )
    assert proc.returncode != 0 and "must be an integer" in proc.stderr


def test_envs_json_lists_families():
    data = json.loads(cocoa("envs", "--json", check=True).stdout)
    names = {d["name"] for d in data}
    assert {"point-robot", "sparse-point-robot"} <= names
    for d in data:
        assert set(d) >= {
            "name",
            "obs_dim",
            "action_dim",
            "horizon",
            "n_train",
            "n_test",
            "oracle_dim",
            "has_success",
        }


def test_resuming_a_finished_run_does_nothing(reference_run):
    before = (reference_run / "progress.csv").read_text()
    proc = cocoa("meta-train", "--resume", str(reference_run), "--quiet", check=True)
    assert "nothing to do" in proc.stdout
    assert (reference_run / "progress.csv").read_text() == before


def test_similarities_lists_the_registry():
    lines = cocoa("similarities", check=True).stdout.strip().split("\n")
    assert lines[0].startswith("bhattacharyya  (default)") and "eq. 4.2" in lines[0]
    names = [line.split()[0] for line in lines]
    assert {"bilinear", "cosine", "neg-euclidean", "bhattacharyya-full", "dot"} <= set(names)
    for line in lines:  # one line each, with a description
        assert len(line.split()) > 3, line


def test_envs_show_describes_the_family():
    text = cocoa("envs", "--show", "cheetah-vel", check=True).stdout
    assert text.startswith("cheetah-vel (cheetah-vel, locomotion)")
    assert "target velocity U[0, 3)" in text
    assert "100 train / 30 test tasks, fixed by task seed 0" in text
    assert "goal_velocity: scalar in [" in text
    assert "horizon:    200 steps" in text and "reward:     dense" in text
    assert "thesis: 2 exploration + 3 evaluation episodes of 200 steps" in text
    assert "metaworld-v3: does not apply" in text
    d = json.loads(cocoa("envs", "--show", "sparse-point-robot", "--json", check=True).stdout)
    assert d["has_success"] and d["reward"].startswith("sparse") and d["task_seed"] == 0
    assert d["protocols"]["pearl"] == {
        "horizon": 20,
        "explore_episodes": 5,
        "eval_episodes": 15,
        "runs": 2,
        "online": True,
    }


def start_training(tmp_path, cfg, name, steps=1_000_000):
    """A long run in a child process, once it has written a checkpoint past iteration 1."""
    run = tmp_path / "point-robot" / "cocoa" / name
    proc = subprocess.Popen(
        [sys.executable, "-m", "cocoa", *train_args(tmp_path, name, cfg, steps=steps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        status = run / "status.json"
        if status.exists() and json.loads(status.read_text()).get("iteration", 0) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    return proc, run


def test_one_writer_per_run_and_sigterm_is_an_interrupt(tmp_path, tiny_config):
    import torch

    proc, run = start_training(tmp_path, tiny_config, "w")
    try:
        lock = json.loads((run / "lock").read_text())
        assert lock["pid"] == proc.pid and lock["host"]
        # a second writer is refused with one line naming the holder
        second = cocoa("meta-train", "--resume", str(run), "--steps", "9000", "--quiet")
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert f"in use by another cocoa process (PID {proc.pid} on host" in lines[0]
        # as schedulers stop jobs: SIGTERM
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        f"interrupted by SIGTERM; resume with: cocoa meta-train --resume {run}"
    )
    assert "Traceback" not in err
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted"
    assert "interrupted by SIGTERM" in (run / "log.txt").read_text()
    # status.json tells what the last checkpoint holds
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert status["iteration"] == ckpt["trainer"]["iteration"]
    assert status["env_steps"] == ckpt["learner"]["env_steps"]
    assert status["last_eval_step"] == ckpt["trainer"]["last_eval_step"]
    assert (run / "lock").read_text() == ""  # released
    # the hint works: the run resumes, and says where it stands
    budget = status["env_steps"] + 320  # one more iteration
    resumed = cocoa("meta-train", "--resume", str(run), "--steps", str(budget), check=True)
    assert (
        f"resuming at iteration {status['iteration']}, {status['env_steps']:,} of {budget:,}"
        in resumed.stderr
    )
    # the bar starts at the checkpoint's env steps, with the last meta-test's return
    bar = [s for s in resumed.stderr.replace("\r", "\n").splitlines() if f"/{budget} " in s]
    assert f" {status['env_steps']}/{budget} " in bar[0] and "return=" in bar[0], bar[0]
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_the_bar_shows_true_env_steps(tmp_path, tiny_config):
    args = train_args(tmp_path, "bar", tiny_config, steps=2000)
    args += ["--eval-interval", "5000", "--set", "algo_config.kl_lambda=0.3"]
    proc = cocoa(*[a for a in args if a != "--quiet"], check=True)
    run = tmp_path / "point-robot" / "cocoa" / "bar"
    config = json.loads((run / "config.json").read_text())
    assert config["eval_interval"] == 5000 and config["algo_config"]["kl_lambda"] == 0.3
    assert config["algo_config"]["net_size"] == 32  # --set joins --config, it does not replace it
    status = json.loads((run / "status.json").read_text())
    done = status["env_steps"]
    assert done > 2000  # whole iterations: the last one passes the budget
    assert f"{done}/{done}" in proc.stderr.replace("\r", "\n").splitlines()[-1]


def test_compact_drops_buffers_and_meta_test_still_works(tmp_path, reference_run):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    before = (run / "checkpoints" / "latest.pt").stat().st_size
    policy = torch.load(run / "checkpoints" / "policy.pt", weights_only=False)
    assert set(policy["weights"]) == {"policy", "encoder"}
    assert policy["env_steps"] == json.loads((run / "status.json").read_text())["env_steps"]
    out = cocoa("meta-train", "--resume", str(run), "--compact", check=True).stdout
    assert out.startswith(f"compacted {run}: checkpoint ")
    after = (run / "checkpoints" / "latest.pt").stat().st_size
    assert after < before / 2
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert ckpt["learner"]["rl_buffer"]["filled"].sum() == 0
    compacted = json.loads(cocoa("meta-test", str(run), "--json", check=True).stdout)
    last = pd.read_csv(run / "progress.csv")["meta_test/return"].dropna().iloc[-1]
    assert compacted["meta_test/return"] == pytest.approx(last, rel=1e-5)  # the same weights
    # a compacted run cannot resume: one line, nothing touched
    proc = cocoa("meta-train", "--resume", str(run), "--steps", "90000")
    assert proc.returncode == 2 and "was compacted" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unfinished_run_cannot_be_compacted(tmp_path, reference_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps(status | {"status": "interrupted"}))
    proc = cocoa("meta-train", "--resume", str(run), "--compact")
    assert proc.returncode == 2 and "is interrupted, not finished" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plot", "--output", "/proc/x.png"],
        ["plot", "--output", "{file}/x.png"],
        ["table", "--output", "{file}/t.md"],
        ["table", "--output", "/proc/t.md"],
        ["meta-train", "--env", "point-robot", "--out", "{file}/runs"],
        ["meta-train", "--env", "point-robot", "--out", "/proc/runs"],
        [
            "sweep",
            "--envs",
            "point-robot",
            "--seeds",
            "0",
            "--out",
            "{file}/runs",
            "--parallel",
            "0",
        ],
        ["bench", "--env", "point-robot", "--json", "{file}/b.json"],
        ["meta-train", "--env", "point-robot", "--config", "{file}/c.json"],
    ],
)
def test_file_system_errors_are_one_line(args, tmp_path, reference_run):
    file = tmp_path / "a-file"
    file.write_text("")
    args = [a.replace("{file}", str(file)) for a in args]
    if args[0] in ("plot", "table"):
        args += ["--runs", str(reference_run.parents[2])]
    proc = cocoa(*args, *(["--quiet"] if args[0] in ("meta-train", "sweep") else []))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_ls_lists_runs_with_live_and_stale_status(tmp_path, reference_run):
    import shutil

    root = tmp_path / "runs"
    for name in ("done", "killed", "live"):
        shutil.copytree(reference_run, root / "point-robot" / "cocoa" / name)
    for name in ("killed", "live"):
        status = root / "point-robot" / "cocoa" / name / "status.json"
        status.write_text(json.dumps(json.loads(status.read_text()) | {"status": "running"}))
    code = (
        "import sys, time; from cocoa.runs import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(root / "point-robot" / "cocoa" / "live")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        rows = json.loads(cocoa("ls", str(root), "--json", check=True).stdout)
        table = cocoa("ls", str(root), check=True).stdout.splitlines()
    finally:
        holder.kill()
        holder.wait()
    by_name = {Path(r["run_dir"]).name: r for r in rows}
    assert {n: r["status"] for n, r in by_name.items()} == {
        "done": "finished",
        "killed": "stale",
        "live": "running",
    }
    assert by_name["live"]["holder"]["pid"] == holder.pid
    last = pd.read_csv(reference_run / "progress.csv").dropna(subset=["meta_test/return"])
    for r in rows:
        assert (r["env"], r["algo"], r["seed"]) == ("point-robot", "cocoa", 0)
        assert r["env_steps"] == int(last["env_steps"].iloc[-1])
        assert r["return"] == pytest.approx(last["meta_test/return"].iloc[-1])
        assert r["bytes"] > 0
    assert table[0].split() == [
        "run", "env", "algo", "seed", "status", "env", "steps", "return", "success", "size"
    ]  # fmt: skip
    assert table[1].split()[:5] == [
        "point-robot/cocoa/done",
        "point-robot",
        "cocoa",
        "0",
        "finished",
    ]
    assert cocoa("ls", str(tmp_path / "none")).returncode == 2


def test_a_budget_that_takes_days_is_warned_with_its_time(tmp_path, tiny_config, monkeypatch):
    from cocoa import trainer
    from cocoa.cli import main

    monkeypatch.setattr(trainer, "LONG_RUN_S", 0.0)  # any remaining time counts as long
    main(train_args(tmp_path, "long", tiny_config, steps=2600))
    log = (tmp_path / "point-robot" / "cocoa" / "long" / "log.txt").read_text()
    assert "warning: at this pace (" in log and "the budget of 2,600 env steps needs about" in log
    monkeypatch.setattr(trainer, "LONG_RUN_S", 1e9)
    main(train_args(tmp_path, "short", tiny_config, steps=2600))
    assert "warning" not in (tmp_path / "point-robot" / "cocoa" / "short" / "log.txt").read_text()


def tiny_run_config(steps):
    from cocoa.config import make_run_config

    return make_run_config(
        env="point-robot",
        algo="cocoa",
        seed=0,
        steps=steps,
        preset="quick",
        protocol="thesis",
        device="cpu",
        similarity=None,
        overrides=TINY,
    )


def test_an_interrupt_while_checkpointing_leaves_status_and_checkpoint_agreeing(
    tmp_path, monkeypatch
):
    import torch

    from cocoa import trainer
    from cocoa.runs import RunInterrupted

    write_policy, calls = trainer.write_policy, []

    def interrupted_write_policy(*args):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint: latest.pt is written, policy.pt is not
            os.kill(os.getpid(), signal.SIGTERM)
        write_policy(*args)

    monkeypatch.setattr(trainer, "write_policy", interrupted_write_policy)
    run = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        trainer.train(tiny_run_config(1_000_000), run, progress=False)
    status = json.loads((run / "status.json").read_text())
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert status["status"] == "interrupted" and ckpt["learner"]["env_steps"] > 0
    assert status["env_steps"] == ckpt["learner"]["env_steps"]
    assert status["iteration"] == ckpt["trainer"]["iteration"]


def test_resume_below_the_steps_reached_keeps_the_status(tmp_path):
    from cocoa import trainer
    from cocoa.runs import write_status

    run = tmp_path / "run"
    trainer.train(tiny_run_config(300), run, progress=False)
    reached = json.loads((run / "status.json").read_text())["env_steps"]
    write_status(run, "interrupted", env_steps=reached)  # as if stopped before its end
    before = (run / "progress.csv").read_text()
    assert trainer.train(tiny_run_config(100), run, resume=True, progress=False) is None
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "progress.csv").read_text() == before


def test_an_interrupt_before_the_loop_is_recorded(tmp_path, monkeypatch):
    from cocoa import trainer
    from cocoa.runs import RunInterrupted

    def interrupted_bar(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "tqdm", interrupted_bar)
    run = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        trainer.train(tiny_run_config(1000), run, progress=False)
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


def test_resume_before_the_first_checkpoint_starts_afresh(tmp_path):
    from cocoa.config import to_dict

    run = tmp_path / "point-robot" / "cocoa" / "early"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(to_dict(tiny_run_config(1))))
    (run / "progress.csv").write_text("iteration,env_steps,wall_time_s\n0,0,1.0\n")  # half
    (run / "status.json").write_text(json.dumps({"status": "interrupted", "env_steps": 0}))
    proc = cocoa("meta-train", "--resume", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "has no checkpoint yet: starting it afresh" in proc.stderr
    rows = progress(run)
    assert list(rows["iteration"]) == list(range(len(rows))) and len(rows) == 2
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


# ------------------------------------------------------------------------- reward version


def reach_run_config(reward_version, algo="cocoa"):
    from cocoa.config import make_run_config

    return make_run_config(
        env="reach",
        algo=algo,
        seed=0,
        steps=None,
        preset="quick",
        protocol="thesis",
        device="cpu",
        similarity=None,
        overrides=None,
        reward_version=reward_version,
    )


def write_run(root, cfg, name="r"):
    from cocoa.config import to_dict

    run = root / cfg.env / cfg.algo / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(to_dict(cfg)))
    return run


def test_reward_version_is_recorded_and_read_back(tmp_path):
    from cocoa.algorithms import get_algorithm
    from cocoa.config import from_dict, to_dict

    cfg = reach_run_config("v1")
    assert cfg.reward_version == "v1" and reach_run_config("v2").reward_version == "v2"
    data = json.loads(json.dumps(to_dict(cfg)))
    assert data["reward_version"] == "v1"
    config_cls = get_algorithm("cocoa").config_cls
    assert from_dict(data, config_cls) == cfg
    # a config.json written before the setting existed is a v2 run
    old = {k: v for k, v in data.items() if k != "reward_version"}
    assert from_dict(old, config_cls).reward_version == "v2"
    with pytest.raises(ValueError, match="must be v1 or v2, got 'v3'"):
        from_dict(data | {"reward_version": "v3"}, config_cls)


def test_the_run_builds_its_envs_with_its_reward_version():
    from cocoa.trainer import build

    for version in ("v1", "v2"):
        setup = build(reach_run_config(version, algo="oracle-sac"))
        assert setup.family.name == "reach" and setup.family.reward_version == version
        assert setup.learner.env.unwrapped.reward_function_version == version
        env = setup.family.make_env(setup.sampler.test_tasks()[0])
        assert env.unwrapped.reward_function_version == version  # the evaluator's envs


def test_sweep_threads_the_reward_version_and_reads_old_runs_as_v2(tmp_path):
    from cocoa.sweep import FRESH, expand_grid, plan_run

    def grid(version):
        return expand_grid(
            algos=["cocoa", "pearl"],
            envs=["reach"],
            seeds=[0],
            out=tmp_path,
            steps=None,
            preset="quick",
            protocol="thesis",
            device="cpu",
            reward_version=version,
        )

    assert {r.config["reward_version"] for r in grid("v1")} == {"v1"}
    (run,) = [r for r in grid("v2") if r.algo == "cocoa"]
    run.run_dir.mkdir(parents=True)
    old = {k: v for k, v in run.config.items() if k != "reward_version"}
    (run.run_dir / "config.json").write_text(json.dumps(old))
    assert plan_run(run) == FRESH  # the same config: a v2 run without the key
    (v1_run,) = [r for r in grid("v1") if r.algo == "cocoa"]
    with pytest.raises(ValueError, match="reward_version: 'v2' in the run, 'v1' now"):
        plan_run(v1_run)


def test_a_resumed_run_keeps_its_reward_version(tmp_path):
    run = write_run(tmp_path, reach_run_config("v1"))
    proc = cocoa("meta-train", "--resume", str(run), "--reward-version", "v2")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {run} was trained with reward version v1; a resumed run keeps its reward version"
    ]


def test_official_refuses_non_metaworld_runs_and_runs_without_checkpoint(tmp_path, reference_run):
    proc = cocoa("meta-test", str(reference_run), "--official")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "Metaworld's evaluator applies to Metaworld families" in line
    assert "'point-robot'" in line
    run = write_run(tmp_path, reach_run_config("v2"))
    proc = cocoa("meta-test", str(run), "--official")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "has no checkpoint to evaluate yet" in line


def test_meta_test_official_prints_both_evaluators(tmp_path, monkeypatch):
    """The wiring of ``--official``, with both evaluators stubbed (the real ones take minutes
    on reach; tests/test_official.py runs them): Metaworld's gets the run's family with its
    reward version, its task seed and the checkpoint's learner; ours runs metaworld-v3."""
    from click.testing import CliRunner

    import cocoa.evaluator
    import cocoa.official
    from cocoa.cli import cli
    from cocoa.evaluator import EvalResult, TaskResult
    from cocoa.official import OfficialResult
    from cocoa.trainer import build, save_checkpoint

    cfg = reach_run_config("v1")
    run = write_run(tmp_path, cfg)
    setup = build(cfg)
    setup.learner.env_steps = 1234
    save_checkpoint(run, setup.learner, {"iteration": 1})
    calls = {}

    def ours(learner, family, tasks, protocol, seed=0):
        calls["ours"] = (family.reward_version, protocol.name, protocol.horizon, len(tasks))
        results = [
            TaskResult(t.index, [0.0] * 10, [5.0, 6.0, 7.0], [i == 0] * 3)
            for i, t in enumerate(tasks)
        ]
        return EvalResult(protocol.name, results, True)

    def official(learner, family, task_seed=0, **kwargs):
        calls["official"] = (family.reward_version, task_seed, learner.env_steps)
        return OfficialResult(
            1.0, 42.0, {"reach-v3": 1.0}, {0: 1.0}, {"reach-v3": [0, 0, 0]}, 10, 3, 10, 500
        )

    monkeypatch.setattr(cocoa.evaluator, "evaluate", ours)
    monkeypatch.setattr(cocoa.official, "official_evaluate", official)
    result = CliRunner().invoke(cli, ["meta-test", str(run), "--official"])
    assert result.exit_code == 0, result.output
    assert calls == {"ours": ("v1", "metaworld-v3", 500, 10), "official": ("v1", 0, 1234)}
    lines = result.stdout.splitlines()
    assert "v1 rewards" in lines[0] and "1,234 env steps" in lines[0]
    ours_line = next(l for l in lines if "metaworld-v3 (ours)" in l)
    official_line = next(l for l in lines if "Metaworld evaluator" in l)
    assert ours_line.split()[2:4] == ["0.100", "6.00"]
    assert official_line.split()[2:4] == ["1.000", "42.00"]
    assert "reach-v3: goals 0, 0, 0" in result.stdout
    as_json = CliRunner().invoke(cli, ["meta-test", str(run), "--official", "--json"])
    summary = json.loads(as_json.stdout)
    assert summary["meta_test/success"] == pytest.approx(0.1)
    assert summary["official"]["success"] == 1.0 and summary["official"]["return"] == 42.0
    assert summary["reward_version"] == "v1"
    refused = CliRunner().invoke(cli, ["meta-test", str(run), "--official", "--protocol", "thesis"])
    assert refused.exit_code != 0 and "drop --protocol thesis" in refused.output
