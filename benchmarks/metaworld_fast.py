"""Stock versus fast (``cocoa.envs.metaworld_fast``) Metaworld ``env.step`` throughput.

Per env: one task, uniform random actions, 500-step episodes (resets not timed), stock and
fast runs alternating ``--repeats`` times, the fastest of each reported. Times are this
process's CPU time, so other load on the machine distorts them little.

    python benchmarks/metaworld_fast.py [--steps 2000] [--repeats 3] [reach-v3 push-v3 ...]
"""

from __future__ import annotations

import argparse

from cocoa.envs.metaworld_fast import measure_speedup

DEFAULT_ENVS = ("reach-v3", "push-v3", "pick-place-v3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", default=list(DEFAULT_ENVS))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'env':<24}{'stock steps/s':>15}{'fast steps/s':>15}{'speedup':>10}")
    for env_id in args.envs:
        row = measure_speedup(env_id, steps=args.steps, repeats=args.repeats)
        print(
            f"{row['env']:<24}{row['stock_steps_per_s']:>15.0f}"
            f"{row['fast_steps_per_s']:>15.0f}{row['speedup']:>9.2f}x"
        )


if __name__ == "__main__":
    main()
