"""Sweeps: grid expansion, naming, skip/resume/fresh planning and the executors.

Most tests inject ``fake_train`` (module level, so spawned workers can import it); the
``real`` tests run the actual trainer on a tiny budget, then report on the result.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cocoa import sweep
from cocoa.cli import main
from cocoa.config import to_dict
from cocoa.runs import ProgressWriter, read_status, write_json, write_status

ENVS = ["point-robot", "sparse-point-robot"]
ALGOS = ["cocoa", "pearl"]
# A budget of at least one iteration of the quick preset on the point robots (8,800 steps)
STEPS = 10_000
# Makes a point-robot run take one short iteration (1,680 env steps: the first iteration
# collects one episode on each of the 80 training tasks) and two meta-tests.
FAST_STEPS = 1680
FAST = {
    "eval_interval": 200,
    "algo_config": {
        "net_size": 16,
        "encoder_hidden": [16],
        "meta_batch": 2,
        "batch_size": 16,
        "embedding_batch_size": 16,
        "num_initial_steps": 5,
        "num_tasks_sample": 2,
        "num_steps_prior": 20,
        "num_steps_posterior": 0,  # the same collection on both point robots
        "num_extra_rl_steps_posterior": 20,
        "num_train_steps_per_itr": 5,
        "contrastive_batch": 4,
        "crop_window": 4,
    },
}


def fake_train(cfg, run_dir, resume=False, progress=True):
    """Stands in for ``cocoa.trainer.train``: writes a run directory and logs the call in
    ``calls.txt``. ``COCOA_TEST_FAIL`` / ``COCOA_TEST_DIE`` name runs (``env/algo/seed``)
    that raise / kill their worker process."""
    run_dir = Path(run_dir)
    key = f"{cfg.env}/{cfg.algo}/{cfg.seed}"
    if key in os.environ.get("COCOA_TEST_DIE", "").split(","):
        os._exit(3)
    if not resume:
        run_dir.mkdir(parents=True, exist_ok=True)  # the run's lock may have made it
        write_json(run_dir / "config.json", to_dict(cfg))
    with (run_dir / "calls.txt").open("a") as fh:
        fh.write("resume\n" if resume else "fresh\n")
    if key in os.environ.get("COCOA_TEST_FAIL", "").split(","):
        raise RuntimeError(f"boom in {key}")
    writer = ProgressWriter(run_dir / "progress.csv")
    writer.truncate(0)
    columns = ["iteration", "env_steps", "wall_time_s", "meta_test/return"]
    for i, steps in enumerate((0, cfg.steps)):
        writer.write({"iteration": i, "env_steps": steps, "meta_test/return": float(i)}, columns)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "latest.pt").write_bytes(b"checkpoint")
    write_status(run_dir, "finished", env_steps=cfg.steps)
    return SimpleNamespace(mean_return=1.0)


def calls(run: sweep.SweepRun) -> list[str]:
    path = run.run_dir / "calls.txt"
    return path.read_text().split() if path.exists() else []


def grid(out: Path, **kw) -> list[sweep.SweepRun]:
    args = dict(
        algos=ALGOS,
        envs=ENVS,
        seeds=[0, 1],
        out=out,
        steps=STEPS,
        preset="quick",
        protocol="thesis",
        device="cpu",
    )
    return sweep.expand_grid(**(args | kw))


def quiet(**kw):
    return dict(progress=False, echo=lambda _: None) | kw


# ------------------------------------------------------------------------------ parsing


def test_parsing_helpers():
    assert sweep.parse_list(" cocoa, pearl,,cocoa ") == ["cocoa", "pearl"]
    assert sweep.parse_seeds("0,1") == [0, 1]
    assert sweep.parse_seeds("3,0-2") == [0, 1, 2, 3]
    for bad in ("", "a", "2-1", "-1"):
        with pytest.raises(ValueError, match="seed"):
            sweep.parse_seeds(bad)
    assert sweep.parse_set(["algo_config.kl_lambda=0.2", "steps=500", "protocol=thesis"]) == {
        "algo_config": {"kl_lambda": 0.2},
        "steps": 500,
        "protocol": "thesis",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sweep.parse_set(["steps"])
    assert sweep.merge_overrides({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {
        "a": {"b": 3, "c": 2}
    }
    assert sweep.run_name(0) == "seed0"
    assert sweep.run_name(2, "bilinear") == "bilinear-seed2"


def test_grid_expansion_and_naming(tmp_path: Path):
    runs = grid(tmp_path, overrides={"algo_config": {"kl_lambda": 0.2}})
    assert len(runs) == 8
    assert [r.label for r in runs[:4]] == [
        "cocoa/point-robot/seed0",
        "cocoa/point-robot/seed1",
        "pearl/point-robot/seed0",
        "pearl/point-robot/seed1",
    ]
    assert runs[0].run_dir == tmp_path / "point-robot" / "cocoa" / "seed0"
    assert all(r.config["steps"] == STEPS and r.config["device"] == "cpu" for r in runs)
    assert all(r.config["algo_config"]["kl_lambda"] == 0.2 for r in runs)
    assert grid(tmp_path) == grid(tmp_path)  # deterministic: a relaunch finds the same runs
    # similarities are a dimension of CoCOA only, and are part of the run name
    runs = grid(tmp_path, similarities=["bhattacharyya", "bilinear"])
    names = sorted({f"{r.algo}/{r.run_dir.name}" for r in runs})
    assert names == [
        "cocoa/bhattacharyya-seed0",
        "cocoa/bhattacharyya-seed1",
        "cocoa/bilinear-seed0",
        "cocoa/bilinear-seed1",
        "pearl/seed0",
        "pearl/seed1",
    ]
    bilinear = [r for r in runs if r.similarity == "bilinear"]
    assert all(r.config["algo_config"]["similarity"] == "bilinear" for r in bilinear)
    assert not list(tmp_path.iterdir())  # expanding writes nothing


def test_bad_grid_fails_up_front_with_one_line(tmp_path: Path, capsys):
    with pytest.raises(ValueError, match="unknown algorithm 'pearll'; did you mean pearl"):
        grid(tmp_path, algos=["cocoa", "pearll"])
    with pytest.raises(ValueError, match="unknown config key 'algo_config.nope'"):
        grid(tmp_path, overrides={"algo_config": {"nope": 1}})
    with pytest.raises(ValueError, match="--similarities applies to cocoa"):
        grid(tmp_path, algos=["pearl"], similarities=["bilinear"])
    with pytest.raises(ValueError, match="similarity"):
        grid(tmp_path, similarities=["no-such-similarity"])
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--algos", "cocoa,nope", "--envs", "point-robot", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown algorithm 'nope'") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_grid_of_objectives_and_augments(tmp_path: Path):
    def names(runs):
        return [f"{r.algo}/{r.run_dir.name}" for r in runs if r.env == "point-robot"]

    runs = grid(
        tmp_path, seeds=[3], objectives=["trajectory", "masked"], augments=["crop", "noise"]
    )
    # env, algo, objective, augment, seed; PEARL takes neither and runs once, as before
    assert names(runs) == [
        "cocoa/trajectory-aug-crop-seed3",
        "cocoa/trajectory-aug-noise-seed3",
        "cocoa/masked-aug-crop-seed3",
        "cocoa/masked-aug-noise-seed3",
        "pearl/seed3",
    ]
    assert len(runs) == 10 and grid(tmp_path, seeds=[3], objectives=["trajectory", "masked"],
        augments=["crop", "noise"]) == runs  # fmt: skip
    masked_noise = runs[3]
    assert (masked_noise.objective, masked_noise.augment) == ("masked", "noise")
    assert masked_noise.config["algo_config"]["objective"] == "masked"
    assert masked_noise.config["algo_config"]["augment"] == ["noise"]
    assert (runs[4].objective, runs[4].augment) == (None, None)
    # one value names runs as the single flag does; an augmentation chain joins with +
    assert names(grid(tmp_path, seeds=[3], objectives=["masked"])) == names(
        grid(tmp_path, seeds=[3], objective="masked")
    ) == ["cocoa/masked-seed3", "pearl/seed3"]  # fmt: skip
    chain = grid(
        tmp_path, seeds=[3], augments=["crop+noise", "subsample"], similarities=["bilinear"]
    )
    assert names(chain) == [
        "cocoa/aug-crop+noise-bilinear-seed3",
        "cocoa/aug-subsample-bilinear-seed3",
        "pearl/seed3",
    ]
    assert chain[0].config["algo_config"]["augment"] == ["crop", "noise"]
    # the transition objective brings its own augmentation; existing names are unchanged
    assert names(grid(tmp_path, seeds=[3], objectives=["transition"])) == [
        "cocoa/transition-seed3",
        "pearl/seed3",
    ]
    assert names(grid(tmp_path, seeds=[3], similarities=["bilinear"])) == [
        "cocoa/bilinear-seed3",
        "pearl/seed3",
    ]
    with pytest.raises(ValueError, match="give --objective or --objectives, not both"):
        grid(tmp_path, objective="masked", objectives=["trajectory"])
    with pytest.raises(ValueError, match="unknown objective 'maskd'; did you mean masked"):
        grid(tmp_path, objectives=["trajectory", "maskd"])
    with pytest.raises(ValueError, match="--augment applies to a context objective"):
        grid(tmp_path, algos=["pearl"], augments=["noise"])
    assert not list(tmp_path.iterdir())


def test_cli_sweep_axes_dry_run_and_bad_value(tmp_path: Path, capsys):
    args = ["sweep", "--envs", "point-robot", "--algos", "cocoa", "--seeds", "0"]
    args += ["--steps", str(STEPS), "--preset", "quick", "--device", "cpu", "--out", str(tmp_path)]
    main(
        [*args, "--objectives", "masked,transition", "--augments", "noise,crop+noise", "--dry-run"]
    )
    out = capsys.readouterr().out.splitlines()
    base = tmp_path / "point-robot" / "cocoa"
    assert out == [
        f"fresh    {base / name}"
        for name in (
            "masked-aug-noise-seed0",
            "masked-aug-crop+noise-seed0",
            "transition-aug-noise-seed0",
            "transition-aug-crop+noise-seed0",
        )
    ]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--augments", "crop,nois", "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "known: crop, noise" in err and err.count("\n") == 1


def test_cli_ablate_run_makes_every_value_then_tabulates(tmp_path: Path, monkeypatch, capsys):
    execute_run = sweep.execute_run
    monkeypatch.setattr(
        sweep, "execute_run", lambda job, train_fn=None: execute_run(job, fake_train)
    )
    args = ["ablate", "--axis", "objective", "--values", "trajectory,masked,none", "--run"]
    args += ["--envs", "point-robot", "--seeds", "0", "--steps", str(STEPS), "--preset", "quick"]
    args += ["--device", "cpu", "--runs", str(tmp_path), "--parallel", "0", "--quiet"]
    main(args)
    captured = capsys.readouterr()
    assert "sweep: 3 runs: 3 finished, 0 skipped" in captured.err
    # CoCOA's default objective runs as a plain sweep names it, and none is PEARL: reused
    made = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("config.json"))
    assert made == ["point-robot/cocoa/masked-seed0", "point-robot/cocoa/seed0",
        "point-robot/pearl/seed0"]  # fmt: skip
    config = json.loads((tmp_path / "point-robot/cocoa/masked-seed0/config.json").read_text())
    assert config["algo_config"]["objective"] == "masked"
    assert "| environment | trajectory | masked | none (PEARL) |" in captured.out
    assert "| point-robot | **1.00** | **1.00** | **1.00** |" in captured.out  # all tied
    main(args)
    assert "sweep: 3 runs: 0 finished, 3 skipped" in capsys.readouterr().err


# ------------------------------------------------------------------------- skip / resume


def test_relaunch_skips_finished_and_resumes_killed(tmp_path: Path):
    runs = grid(tmp_path)
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert result.ok and result.count("finished") == 8
    assert all(calls(r) == ["fresh"] for r in runs)
    # relaunch: nothing to do
    lines = []
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet(echo=lines.append))
    assert result.count("skipped") == 8 and result.ok
    assert "8 finished before (skipped)" in lines[0] and "0 to start" in lines[0]
    assert all(calls(r) == ["fresh"] for r in runs)
    # a killed sweep: one run left with a checkpoint and status running
    killed = runs[5]
    write_status(killed.run_dir, "running", iteration=3)
    assert [a for _, a in sweep.plan(runs)].count("resume") == 1
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert result.count("finished") == 1 and result.count("skipped") == 7
    assert calls(killed) == ["fresh", "resume"]
    assert read_status(killed.run_dir)["status"] == "finished"


def test_half_written_run_without_checkpoint_starts_fresh(tmp_path: Path):
    run = grid(tmp_path, algos=["pearl"], envs=["point-robot"], seeds=[0])[0]
    run.run_dir.mkdir(parents=True)
    write_json(run.run_dir / "config.json", run.config)
    (run.run_dir / "progress.csv").write_text("iteration,env_steps\n0,0\n")
    write_status(run.run_dir, "running")
    assert sweep.plan_run(run) == "fresh"
    sweep.run_sweep([run], workers=0, train_fn=fake_train, **quiet())
    assert calls(run) == ["fresh"]
    assert (run.run_dir / "progress.csv").read_text().startswith("iteration,env_steps,wall")


def test_existing_run_with_another_config_stops_the_sweep(tmp_path: Path):
    sweep.run_sweep(grid(tmp_path), workers=0, train_fn=fake_train, **quiet())
    with pytest.raises(
        ValueError, match=r"holds a run with another config \(algo_config.kl_lambda: 0.1 in"
    ):
        sweep.plan(grid(tmp_path, overrides={"algo_config": {"kl_lambda": 0.3}}))


def test_larger_budget_resumes_finished_runs(tmp_path: Path):
    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert [a for _, a in sweep.plan(grid(tmp_path, algos=["pearl"], envs=["point-robot"]))] == [
        "skip",
        "skip",
    ]
    bigger = grid(tmp_path, algos=["pearl"], envs=["point-robot"], steps=2 * STEPS)
    assert [a for _, a in sweep.plan(bigger)] == ["resume", "resume"]
    result = sweep.run_sweep(bigger, workers=0, train_fn=fake_train, **quiet())
    assert result.count("finished") == 2 and result.ok
    assert all(calls(r) == ["fresh", "resume"] for r in bigger)
    assert all(read_status(r.run_dir)["env_steps"] == 2 * STEPS for r in bigger)
    # a smaller budget than reached: nothing to do
    assert [a for _, a in sweep.plan(runs)] == ["skip", "skip"]


def test_compacted_runs_are_skipped_not_extended(tmp_path: Path):
    import torch

    from cocoa.trainer import compact

    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    for run in runs:  # a minimal real checkpoint, compacted as `--resume D --compact` does
        torch.save({"learner": {}, "trainer": {}}, run.run_dir / sweep.CHECKPOINT)
        compact(run.run_dir)
        assert read_status(run.run_dir)["compacted"] is True
        assert read_status(run.run_dir)["env_steps"] == STEPS
    bigger = grid(tmp_path, algos=["pearl"], envs=["point-robot"], steps=2 * STEPS)
    assert [a for _, a in sweep.plan(bigger)] == ["skip", "skip"]
    lines = []
    result = sweep.run_sweep(bigger, workers=0, train_fn=fake_train, **quiet(echo=lines.append))
    assert result.count("skipped") == 2 and all(calls(r) == ["fresh"] for r in bigger)
    assert "compacted; cannot extend" in result.summary()
    assert any("compacted; cannot extend" in line for line in lines)


def test_a_smaller_budget_does_not_cut_unfinished_runs(tmp_path: Path):
    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"], steps=2 * STEPS)
    sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    write_status(runs[0].run_dir, "interrupted", env_steps=STEPS)
    smaller = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    with pytest.raises(ValueError, match=r"another config \(steps: .* smaller budget"):
        sweep.plan(smaller)
    assert calls(runs[0]) == ["fresh"]


def test_budget_below_one_iteration_stops_the_sweep_up_front(tmp_path: Path):
    with pytest.raises(ValueError, match=r"--steps 100 is below one training iteration.*8,800"):
        grid(tmp_path, steps=100)
    assert not list(tmp_path.iterdir())


def test_run_held_by_a_live_process_is_left_alone(tmp_path: Path):
    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    held = runs[0]
    write_status(held.run_dir, "running", iteration=3)  # looks killed: a sweep would resume it
    code = (
        "import sys, time; from cocoa.runs import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(held.run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert [a for _, a in sweep.plan(runs)] == ["busy", "skip"]
        before = (held.run_dir / "status.json").read_text()
        result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
        assert result.count("busy") == 1 and not result.ok
        assert f"in use by PID {holder.pid}" in result.summary()
        assert calls(held) == ["fresh"]  # not resumed
        assert (held.run_dir / "status.json").read_text() == before
        # the run is taken between plan and launch: the worker leaves it alone too
        job = sweep._job(held, "fresh", None)
        out = sweep.execute_run(job, fake_train)
        assert out["status"] == "busy" and f"PID {holder.pid}" in out["error"]
        assert (held.run_dir / "status.json").read_text() == before
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and the run is resumed
    assert [a for _, a in sweep.plan(runs)] == ["resume", "skip"]
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert result.ok and calls(held) == ["fresh", "resume"]
    # and the run's log says whose lock it took over
    assert (
        f"took over the stale lock of PID {holder.pid} on host"
        in (held.run_dir / "log.txt").read_text()
    )


def test_a_run_found_busy_at_launch_is_not_counted_failed(tmp_path: Path, monkeypatch):
    displays = []

    class Display(sweep._Display):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            displays.append(self)

    monkeypatch.setattr(sweep, "_Display", Display)
    monkeypatch.setattr(sweep, "execute_run", lambda job, fn: {"status": "busy", "error": "PID 1"})
    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert result.count("busy") == 2 and displays[0].failed == 0


def test_diverged_run_is_skipped_and_reported(tmp_path: Path):
    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    write_status(runs[0].run_dir, "diverged", error="qf_loss became non-finite")
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert not result.ok and result.count("diverged") == 1 and result.count("skipped") == 1
    assert "diverged: " in result.summary() and "qf_loss became non-finite" in result.summary()
    assert calls(runs[0]) == ["fresh"]


# ----------------------------------------------------------------------------- failures


def test_failed_run_is_recorded_and_the_others_finish(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COCOA_TEST_FAIL", "point-robot/pearl/1")
    runs = grid(tmp_path)
    result = sweep.run_sweep(runs, workers=2, train_fn=fake_train, **quiet())
    assert result.count("finished") == 7 and result.count("failed") == 1 and not result.ok
    failed = next(r for r in runs if r.label == "pearl/point-robot/seed1")
    status = read_status(failed.run_dir)
    assert status["status"] == "failed"
    assert status["error"] == "RuntimeError: boom in point-robot/pearl/1"
    trace = (failed.run_dir / "error.txt").read_text()
    assert trace.startswith("Traceback") and "fake_train" in trace
    assert f"failed: {failed.run_dir}: RuntimeError: boom" in result.summary()
    # relaunch once the cause is gone: only the failed run runs (fresh: no checkpoint)
    monkeypatch.delenv("COCOA_TEST_FAIL")
    result = sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet())
    assert result.ok and result.count("finished") == 1 and result.count("skipped") == 7
    assert calls(failed) == ["fresh"]


def test_dead_worker_process_does_not_stop_the_sweep(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COCOA_TEST_DIE", "point-robot/cocoa/1")
    runs = grid(tmp_path)
    result = sweep.run_sweep(runs, workers=2, train_fn=fake_train, **quiet())
    outcome = {r.label: s for r, s, _ in result.outcomes}
    assert outcome["cocoa/point-robot/seed1"] == "failed"
    assert read_status(runs[1].run_dir)["error"].startswith("WorkerDied")
    # at most the run in flight beside it was stopped too; the rest went on in a new pool
    assert result.count("finished") >= 6
    monkeypatch.delenv("COCOA_TEST_DIE")
    assert sweep.run_sweep(runs, workers=0, train_fn=fake_train, **quiet()).ok


def test_cli_sweep_exit_code_and_dry_run(tmp_path: Path, monkeypatch, capsys):
    execute_run = sweep.execute_run
    monkeypatch.setattr(
        sweep, "execute_run", lambda job, train_fn=None: execute_run(job, fake_train)
    )
    monkeypatch.setenv("COCOA_TEST_FAIL", "point-robot/pearl/0")
    args = ["sweep", "--envs", "point-robot", "--seeds", "0", "--steps", str(STEPS)]
    args += ["--preset", "quick", "--device", "cpu", "--out", str(tmp_path), "--parallel", "0"]
    args += ["--set", "algo_config.kl_lambda=0.3", "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "sweep: 2 runs: 1 finished, 0 skipped, 1 failed, 0 diverged" in err
    config = json.loads((tmp_path / "point-robot" / "cocoa" / "seed0" / "config.json").read_text())
    assert config["algo_config"]["kl_lambda"] == 0.3
    main([*args, "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"skip     {tmp_path / 'point-robot' / 'cocoa' / 'seed0'}",
        f"fresh    {tmp_path / 'point-robot' / 'pearl' / 'seed0'}",
    ]


# ------------------------------------------------------------------- real training runs


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """2 algorithms x 2 envs x 2 seeds of real training (one short iteration each)."""
    out = tmp_path_factory.mktemp("real") / "runs"
    runs = grid(out, steps=FAST_STEPS, overrides=FAST)
    start = time.monotonic()
    result = sweep.run_sweep(runs, workers=2, **quiet())
    assert result.ok, result.summary()
    return SimpleNamespace(out=out, runs=runs, seconds=time.monotonic() - start)


def test_real_sweep_then_table_ablate_plot(real_sweep, tmp_path: Path, capsys):
    for run in real_sweep.runs:
        assert read_status(run.run_dir)["status"] == "finished"
        assert (run.run_dir / "checkpoints" / "latest.pt").exists()
    out = str(real_sweep.out)
    main(["table", "--runs", out])
    text = capsys.readouterr().out
    assert "| environment | PEARL | CoCOA |" in text
    assert "| point-robot | " in text and "| sparse-point-robot | " in text
    assert "budget: 1,680 env steps" in text and "missing" not in text
    main(["table", "--runs", out, "--metric", "success", "--format", "csv"])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].startswith("sparse-point-robot,")
    assert "no meta-test success rate recorded for: point-robot" in captured.err
    main(["ablate", "--runs", out])
    text = capsys.readouterr().out
    assert "| environment | Bhattacharyya | Bilinear |" in text
    assert "missing: Bilinear on point-robot, Bilinear on sparse-point-robot" in text
    main(["plot", "--runs", out, "--output", str(tmp_path / "curves.png")])
    assert (tmp_path / "curves.png").exists() and (tmp_path / "curves.pdf").exists()


def test_real_relaunch_does_no_work(real_sweep):
    before = {r.run_dir: (r.run_dir / "progress.csv").stat().st_mtime_ns for r in real_sweep.runs}
    start = time.monotonic()
    result = sweep.run_sweep(real_sweep.runs, workers=2, **quiet())
    assert result.count("skipped") == 8 and result.ok
    assert time.monotonic() - start < 2
    after = {r.run_dir: (r.run_dir / "progress.csv").stat().st_mtime_ns for r in real_sweep.runs}
    assert after == before


def test_real_killed_sweep_resumes_only_the_killed_run(real_sweep, tmp_path: Path):
    victim = next(r for r in real_sweep.runs if r.label == "pearl/sparse-point-robot/seed1")
    shutil.rmtree(victim.run_dir)
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST))
    cmd = [sys.executable, "-c", "from cocoa.cli import main; main()"]
    cmd += ["sweep", "--algos", ",".join(ALGOS)]
    cmd += ["--envs", ",".join(ENVS), "--seeds", "0,1", "--steps", str(FAST_STEPS)]
    cmd += ["--preset", "quick"]
    cmd += ["--device", "cpu", "--config", str(config), "--out", str(real_sweep.out)]
    cmd += ["--parallel", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    checkpoint = victim.run_dir / "checkpoints" / "latest.pt"
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-run
        proc.wait()
    assert checkpoint.exists(), proc.stderr.read()
    deadline = time.monotonic() + 60  # SIGKILL lands asynchronously on the orphaned worker
    while sweep.lock_holder(victim.run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_status(victim.run_dir)["status"] == "running"
    assert [a for _, a in sweep.plan(real_sweep.runs)].count("resume") == 1
    result = sweep.run_sweep(real_sweep.runs, workers=0, **quiet())
    assert result.count("finished") == 1 and result.count("skipped") == 7, result.summary()
    assert read_status(victim.run_dir)["status"] == "finished"
    rows = (victim.run_dir / "progress.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["iteration", "0", "1"]


@pytest.mark.slow
def test_ray_sweep_produces_the_same_run_directories(real_sweep, tmp_path: Path):
    ray = pytest.importorskip("ray")
    import pandas as pd

    out = tmp_path / "ray-runs"
    runs = grid(out, steps=FAST_STEPS, overrides=FAST)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = sweep.run_sweep(runs, executor="ray", cpus_per_run=1, **quiet())
    finally:
        ray.shutdown()
    assert result.ok and result.count("finished") == 8, result.summary()
    assert (out / sweep.RAY_LOG).exists()  # Ray's own log lines go there, not to the terminal
    local = {r.run_dir.relative_to(real_sweep.out) for r in real_sweep.runs}
    assert {r.run_dir.relative_to(out) for r in runs} == local
    for rel in local:
        ours = pd.read_csv(out / rel / "progress.csv")
        theirs = pd.read_csv(real_sweep.out / rel / "progress.csv")
        assert list(ours["env_steps"]) == list(theirs["env_steps"])
        # same seed, same machine, CPU, one thread per run: the same meta-test numbers
        assert list(ours["meta_test/return"]) == list(theirs["meta_test/return"])
        assert json.loads((out / rel / "config.json").read_text()) == json.loads(
            (real_sweep.out / rel / "config.json").read_text()
        )


def test_display_counts_what_really_runs(tmp_path: Path):
    from cocoa.runs import RunLock

    runs = grid(tmp_path, algos=["pearl"], envs=["point-robot"])
    writer = ProgressWriter(runs[0].run_dir / "progress.csv")
    runs[0].run_dir.mkdir(parents=True)
    for i, steps in enumerate((0, 1234)):
        writer.write({"iteration": i, "env_steps": steps}, ["iteration", "env_steps"])
    assert sweep.last_env_steps(runs[0].run_dir) == 1234
    assert sweep.last_env_steps(runs[1].run_dir) == 0
    display = sweep._Display(total=2, enabled=True)
    try:
        with RunLock(runs[0].run_dir):  # runs[0] runs; runs[1] waits for a worker
            display.poll(runs)
            assert (display.running, display.queued) == (1, 1)
            assert display.steps == f"1.2k/{sweep._short(STEPS)}"
        display.poll(runs)
        assert (display.running, display.queued, display.steps) == (0, 2, "")
    finally:
        display.close()
