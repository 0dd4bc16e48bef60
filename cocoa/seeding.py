"""Reproducible randomness without global state: seeded construction, generator states in
checkpoints, and the sampling stream of one meta-test.

* ``seeded(seed)``: networks built inside get reproducible initial weights; the global torch RNG
  is restored afterwards (nothing in the suite leaves a global random number generator changed).
* ``rng_state`` / ``set_rng_state``: numpy and torch generators in a checkpoint.
* ``meta_test_generator``: the sampling stream of one meta-test exploration policy.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from cocoa.envs import Task


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seeds torch's CPU generator for the block (network initialisation), then restores it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def rng_state(rng: np.random.Generator, **generators: torch.Generator) -> dict[str, Any]:
    """The states of a numpy generator and named torch generators, for a checkpoint."""
    return {"rng": rng.bit_generator.state} | {k: g.get_state() for k, g in generators.items()}


def set_rng_state(
    state: dict[str, Any], rng: np.random.Generator, **generators: torch.Generator
) -> None:
    """Restores what ``rng_state`` returned.

    A torch generator's state is device-specific (CPU: a Mersenne Twister; CUDA: Philox's
    seed and offset). A state saved on the other kind of device cannot be restored; the
    generator is then seeded from that state's bytes instead, so a CUDA checkpoint loads on a
    CPU machine (and back), deterministically but with a different stream.
    """
    rng.bit_generator.state = state["rng"]
    for name, g in generators.items():
        saved = state[name]
        if saved.numel() == g.get_state().numel():
            g.set_state(saved)
        else:
            entropy = saved.cpu().numpy().astype(np.uint32)
            g.manual_seed(int(np.random.default_rng(entropy).integers(2**63)))


def meta_test_generator(
    seed: int, env_steps: int, task: Task | None, device: torch.device, run: int = 0
) -> torch.Generator:
    """A torch generator seeded by (run seed, env steps, task, evaluation run) for a meta-test
    policy.

    A meta-test is then a function of the weights alone: reproducible from a checkpoint and
    independent of how often, or in which order, tasks were evaluated before; and evaluating
    never shifts the training streams. ``run`` tells apart the independent runs of one task
    (the ``pearl`` protocol makes two).
    """
    key = f"{seed}/{env_steps}/{task.split if task else ''}/{task.index if task else -1}"
    if run:
        key += f"/run{run}"
    digest = hashlib.sha256(key.encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)
