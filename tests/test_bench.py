"""``cocoa bench``: the report's structure and arithmetic (never its speed: that is what it
measures, on whatever machine runs it)."""

import json
import subprocess
import sys

import pytest

from cocoa.bench import Row, format_table, median_rate, ratios


def cocoa(*args):
    return subprocess.run(
        [sys.executable, "-m", "cocoa", *args], capture_output=True, text=True, timeout=600
    )


def test_median_rate_discards_the_warm_up_and_takes_the_median():
    values = iter([1000.0, 3.0, 1.0, 2.0])  # the first call is the warm-up
    rate, runs = median_rate(lambda: next(values), repeats=3)
    assert runs == [3.0, 1.0, 2.0]
    assert rate == 2.0


def test_ratios_from_hand_made_rows():
    rows = [
        Row("env", "bare env.step (stock)", 1000.0, "steps/s"),
        Row("env", "bare env.step (fast path)", 1600.0, "steps/s"),
        Row("env", "sampler, 1 worker, quick policy", 1500.0, "steps/s"),
        Row("env", "sampler, 2 workers, quick policy", 2700.0, "steps/s"),
        Row("update", "pearl update, quick, cpu", 100.0, "steps/s", {"algo": "pearl"}),
        Row(
            "update",
            "cocoa update, quick, cpu",
            80.0,
            "steps/s",
            {"algo": "cocoa", "preset": "quick", "device": "cpu"},
        ),
        Row(
            "update",
            "cocoa update (masked), quick, cpu",
            50.0,
            "steps/s",
            {"algo": "cocoa", "preset": "quick", "device": "cpu", "objective": "masked"},
        ),
    ]
    r = ratios(rows, workers=2)
    assert r["fast path / stock env.step"] == pytest.approx(1.6)
    # the sampler is compared with the bare loop of the env it steps (the fast path)
    assert r["sampler 1 worker / bare env.step (quick policy)"] == pytest.approx(1500 / 1600)
    assert r["2 workers / 1 worker (quick policy)"] == pytest.approx(1.8)
    # time per update: 1/80 over 1/100
    assert r["CoCOA / PEARL update time (quick, cpu)"] == pytest.approx(1.25)
    assert r["CoCOA masked / PEARL update time (quick, cpu)"] == pytest.approx(2.0)
    table = format_table(rows, r)
    assert "sampler, 2 workers, quick policy" in table and "1.25" in table


def test_bench_env_section_writes_a_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = cocoa(
        "bench",
        "--env",
        "point-robot",
        "--only",
        "env",
        "--workers",
        "2",
        "--repeats",
        "1",
        "--episodes",
        "2",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["rows"]]
    assert names == [
        "bare env.step",
        "sampler, 1 worker, quick policy",
        "sampler, 2 workers, quick policy",
        "sampler, 1 worker, paper policy",
        "sampler, 2 workers, paper policy",
    ]
    assert all(r["value"] > 0 and len(r["detail"]["runs"]) == 1 for r in report["rows"])
    assert report["machine"]["cpu_cores"] >= 1
    assert set(report["ratios"]) == {
        "sampler 1 worker / bare env.step (quick policy)",
        "2 workers / 1 worker (quick policy)",
        "sampler 1 worker / bare env.step (paper policy)",
        "2 workers / 1 worker (paper policy)",
    }
    assert "sampler, 2 workers, paper policy" in proc.stdout


def test_bench_update_section_times_pearl_and_cocoa(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--env", "point-robot", "--only", "update", "--preset", "quick"]
    args += ["--algo", "pearl", "--algo", "cocoa", "--objective", "masked"]
    args += ["--repeats", "1", "--json", str(out)]
    proc = cocoa(*args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {
        "pearl update, quick, cpu",
        "cocoa update, quick, cpu",
        "cocoa update (masked), quick, cpu",
        "Adam.step fused, quick, cpu",
        "Adam.step foreach, quick, cpu",
    }
    pearl = rows["pearl update, quick, cpu"]["value"]
    ratio = report["ratios"]["CoCOA / PEARL update time (quick, cpu)"]
    assert ratio == pytest.approx(pearl / rows["cocoa update, quick, cpu"]["value"])
    ratio = report["ratios"]["CoCOA masked / PEARL update time (quick, cpu)"]
    assert ratio == pytest.approx(pearl / rows["cocoa update (masked), quick, cpu"]["value"])
    fused = report["ratios"]["fused / foreach Adam.step speed (quick, cpu)"]
    assert fused == pytest.approx(
        rows["Adam.step fused, quick, cpu"]["value"]
        / rows["Adam.step foreach, quick, cpu"]["value"]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "reachh"], "did you mean"),
        (["--algo", "nope"], "unknown algorithm"),
        (["--objective", "maskd"], "unknown objective 'maskd'; did you mean masked?"),
        (["--workers", "0"], "--workers"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bench_bad_input_is_one_line(args, message, tmp_path):
    out = tmp_path / "b.json"
    proc = cocoa("bench", *args, "--json", str(out))
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
