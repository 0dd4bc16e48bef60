"""Gradient steps per second of the PEARL and CoCOA updates, quick and paper presets.

    python benchmarks/update_speed.py [--env cheetah-vel] [--presets quick,paper]
        [--device cpu|cuda] [--repeats 9] [--steps 0] [--threads 1] [--adam]

Buffers are filled with real episodes of the family (two per training task, policy at
initialisation); each figure times ``Pearl.gradient_steps`` in blocks after a warm-up. PEARL
and CoCOA blocks alternate, so both see the same load on a shared machine; each rate is the
median over ``--repeats`` blocks, and the CoCOA / PEARL cost ratio is the median of the
per-pair ratios. On CPU the clock is the process's CPU time (robust to other processes) with
``--threads`` intra-op threads; on CUDA it is wall time between device synchronisations.

``--adam`` also times one ``Adam.step`` over the PEARL networks' parameters with the fused
kernel and with ``foreach`` (what ``cocoa.nets.adam`` chooses between).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from cocoa.envs import get_family
from cocoa.pearl import Pearl, preset
from cocoa.task_samplers import get_sampler


def filled_learner(env: str, preset_name: str, contrastive: bool, device: torch.device) -> Pearl:
    """A PEARL/CoCOA learner whose buffers hold two real episodes per training task."""
    family = get_family(env)
    cfg = preset(family, preset_name, contrastive=contrastive)
    cfg = replace(
        cfg,
        num_initial_steps=2 * family.horizon,
        num_tasks_sample=0,
        num_train_steps_per_itr=0,
        replay_buffer_size=min(cfg.replay_buffer_size, 100_000),
    )
    agent = Pearl(cfg, family, get_sampler(env).train_tasks(), device, seed=0)
    agent.train_iteration()  # collection only: no gradient steps
    return agent


def clock(device: torch.device) -> Callable[[], float]:
    """CPU time on CPU; wall time after a device synchronisation on CUDA."""
    if device.type == "cuda":

        def wall() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return wall
    return time.process_time


def seconds_per_step(agent: Pearl, steps: int, now: Callable[[], float]) -> float:
    start = now()
    agent.gradient_steps(steps)
    return (now() - start) / steps


def measure(
    env: str, preset_name: str, device: torch.device, repeats: int, steps: int
) -> tuple[dict[str, float], float]:
    """Median steps/s of PEARL and CoCOA, and the median CoCOA / PEARL time ratio."""
    agents = {
        algo: filled_learner(env, preset_name, algo == "cocoa", device)
        for algo in ("pearl", "cocoa")
    }
    now = clock(device)
    for agent in agents.values():  # warm-up: allocator, optimiser state, kernel selection
        seconds_per_step(agent, steps, now)
    times: dict[str, list[float]] = {algo: [] for algo in agents}
    for _ in range(repeats):
        for algo, agent in agents.items():
            times[algo].append(seconds_per_step(agent, steps, now))
    rates = {algo: 1.0 / statistics.median(t) for algo, t in times.items()}
    ratio = statistics.median(c / p for p, c in zip(times["pearl"], times["cocoa"]))
    return rates, ratio


def adam_step_seconds(agent: Pearl, repeats: int = 9, steps: int = 200) -> dict[str, float]:
    """One ``Adam.step`` over all of the learner's trained parameters: fused vs foreach."""
    modules = (agent.policy, agent.qf1, agent.qf2, agent.vf, agent.encoder)
    params = [p for m in modules for p in m.parameters()]
    out = {}
    for impl in ("fused", "foreach"):
        copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
        for c in copies:
            c.grad = torch.randn_like(c)
        opt = torch.optim.Adam(copies, lr=3e-4, **{impl: True})
        opt.step()  # creates the state
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(steps):
                opt.step()
            runs.append((time.process_time() - start) / steps)
        out[impl] = statistics.median(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cheetah-vel")
    parser.add_argument("--presets", default="quick,paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=0, help="updates per block [auto]")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--adam", action="store_true", help="also time fused vs foreach Adam")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock_name = "wall" if device.type == "cuda" else "cpu"
    print(f"{args.env}, {device.type}, {torch.get_num_threads()} thread(s), {clock_name} time")
    print(f"{'preset':<8}{'pearl steps/s':>15}{'cocoa steps/s':>15}{'cocoa/pearl':>13}")
    for preset_name in args.presets.split(","):
        steps = args.steps or (10 if preset_name == "quick" else 1)
        if device.type == "cuda":
            steps *= 20
        rates, ratio = measure(args.env, preset_name, device, args.repeats, steps)
        print(
            f"{preset_name:<8}{rates['pearl']:>15.1f}{rates['cocoa']:>15.1f}{ratio:>13.2f}",
            flush=True,
        )
    if args.adam and device.type == "cpu":
        for preset_name in args.presets.split(","):
            agent = filled_learner(args.env, preset_name, False, device)
            t = adam_step_seconds(agent)
            print(
                f"Adam.step, {preset_name} networks: fused {t['fused'] * 1e6:.0f} us, "
                f"foreach {t['foreach'] * 1e6:.0f} us ({t['foreach'] / t['fused']:.1f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
