"""Env steps per second through ``TaskEnv`` versus the bare underlying env.

For each family: one task, random actions drawn up front, a warm-up, then ``--steps`` timed
steps (resets are not timed); the best of ``--repeats`` alternating runs of each is reported.
Times are this process's CPU time. "bare" steps ``env.unwrapped`` directly: for Metaworld the
Sawyer env with the task set, for locomotion the gymnasium MuJoCo env, with the actions
TaskEnv would pass on. Single process.

    python benchmarks/env_throughput.py [--steps 3000] [--families reach push ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cocoa.envs import get_family

DEFAULT_FAMILIES = ("reach", "push", "cheetah-vel", "ant-goal")

# CPU time of this (single-threaded) process: other load on the machine does not distort it;
# on an idle machine it matches wall-clock time.
clock = time.process_time


def steps_per_second(step, reset, actions: np.ndarray, horizon: int, warmup: int) -> float:
    """Times ``step(action)`` over ``actions`` after ``warmup`` untimed steps, resetting every
    ``horizon`` steps or when an episode ends; resets are excluded from the time."""
    reset()
    t, elapsed, timed = 0, 0.0, 0
    start = clock()
    for i, action in enumerate(actions):
        if i == warmup:
            start, elapsed = clock(), 0.0
        _, _, terminated, truncated, _ = step(action)
        t += 1
        timed += i >= warmup
        if terminated or truncated or t >= horizon:
            if i >= warmup:
                elapsed += clock() - start
            reset()
            t, start = 0, clock()
    elapsed += clock() - start
    return timed / elapsed


def measure(name: str, steps: int, warmup: int, repeats: int, seed: int = 0):
    """(TaskEnv steps/s, bare env steps/s) for family ``name``."""
    family = get_family(name)
    env = family.make_env(family.make_tasks(0)[0][0])
    bare_env = env.unwrapped
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps + warmup, *env.action_space.shape))
    low, high = bare_env.action_space.low, bare_env.action_space.high
    bare_actions = low + (actions + 1.0) * 0.5 * (high - low)  # what TaskEnv passes on

    def run_wrapped():
        return steps_per_second(
            env.step, lambda: env.reset(seed=seed), actions, env.horizon, warmup
        )

    def run_bare():
        reset = lambda: bare_env.reset(seed=seed)  # noqa: E731
        return steps_per_second(bare_env.step, reset, bare_actions, env.horizon, warmup)

    wrapped, bare = 0.0, 0.0
    for _ in range(repeats):
        wrapped = max(wrapped, run_wrapped())
        bare = max(bare, run_bare())
    env.close()
    return wrapped, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES))
    args = parser.parse_args()
    print(f"{'family':<14}{'TaskEnv steps/s':>17}{'bare steps/s':>15}{'overhead':>10}")
    for name in args.families:
        wrapped, bare = measure(name, args.steps, args.warmup, args.repeats)
        overhead = 100.0 * (bare / wrapped - 1.0)
        print(f"{name:<14}{wrapped:>17.0f}{bare:>15.0f}{overhead:>9.1f}%", flush=True)


if __name__ == "__main__":
    main()
