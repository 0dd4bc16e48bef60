"""Gradient steps per second of the PEARL and CoCOA updates, paper and quick presets.

    python benchmarks/update_speed.py [--env cheetah-vel] [--device cpu|cuda] [--repeats 5]

Buffers are filled with real episodes of the family (random z, policy at initialisation);
each figure is the median over repeats of timed blocks of updates after a warm-up, in wall
time and, on CPU, process CPU time (robust to other load on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from cocoa.envs import get_family
from cocoa.pearl import Pearl, preset
from cocoa.task_samplers import get_sampler


def measure(
    env: str, preset_name: str, contrastive: bool, device: str, repeats: int, steps: int
) -> tuple[float, float]:
    family = get_family(env)
    cfg = preset(family, preset_name, contrastive=contrastive)
    # enough real data for every batch: two episodes per task, no training during collection
    cfg = replace(
        cfg, num_initial_steps=2 * family.horizon, num_tasks_sample=0, num_train_steps_per_itr=0
    )
    tasks = get_sampler(env).train_tasks()
    agent = Pearl(cfg, family, tasks, torch.device(device), seed=0)
    agent.train_iteration()
    n = len(tasks)

    def block() -> tuple[float, float]:
        if device == "cuda":
            torch.cuda.synchronize()
        w, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            agent.update(agent.rng.integers(n, size=cfg.meta_batch))
        if device == "cuda":
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - w), steps / (time.process_time() - c)

    block()  # warm-up
    runs = [block() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cheetah-vel")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=0, help="updates per block [auto]")
    args = parser.parse_args()
    print(f"{'preset':<8}{'algo':<8}{'steps/s (wall)':>16}{'steps/s (cpu)':>15}")
    for preset_name in ("quick", "paper"):
        rates = {}
        for algo, contrastive in (("pearl", False), ("cocoa", True)):
            steps = args.steps or (50 if preset_name == "quick" else 5)
            if args.device == "cuda":
                steps *= 20
            wall, cpu = measure(
                args.env, preset_name, contrastive, args.device, args.repeats, steps
            )
            rates[algo] = wall
            print(f"{preset_name:<8}{algo:<8}{wall:>16.1f}{cpu:>15.1f}", flush=True)
        print(f"{'':<8}CoCOA / PEARL update time: {rates['pearl'] / rates['cocoa']:.2f}")


if __name__ == "__main__":
    main()
