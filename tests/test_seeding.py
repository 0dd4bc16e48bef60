"""Checkpointed generator states: exact on one device, loadable across devices."""

import numpy as np
import torch

from cocoa.seeding import rng_state, set_rng_state


def test_a_restored_state_continues_both_streams_exactly():
    rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(2)
    state = rng_state(rng, gen=gen)
    expected = rng.random(3), torch.rand(3, generator=gen)
    rng2, gen2 = np.random.default_rng(7), torch.Generator().manual_seed(7)
    set_rng_state(state, rng2, gen=gen2)
    np.testing.assert_array_equal(rng2.random(3), expected[0])
    assert torch.equal(torch.rand(3, generator=gen2), expected[1])


def test_a_state_from_another_device_type_seeds_the_generator_from_it():
    """A CUDA generator's state is Philox's seed and offset (16 bytes), a CPU one's a Mersenne
    Twister (5056 bytes): loading one into the other re-seeds from the saved bytes, the same way
    every time, and still restores the numpy stream."""
    cuda_like = {
        "rng": np.random.default_rng(5).bit_generator.state,
        "gen": torch.tensor(list(range(16)), dtype=torch.uint8),
    }
    draws = []
    for _ in range(2):
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        set_rng_state(cuda_like, rng, gen=gen)
        draws.append((rng.random(), torch.rand(4, generator=gen)))
    assert draws[0][0] == draws[1][0] == np.random.default_rng(5).random()
    assert torch.equal(draws[0][1], draws[1][1])
    assert not torch.equal(draws[0][1], torch.rand(4, generator=torch.Generator().manual_seed(0)))
    other = dict(cuda_like, gen=torch.tensor(list(range(1, 17)), dtype=torch.uint8))
    gen = torch.Generator()
    set_rng_state(other, np.random.default_rng(0), gen=gen)
    assert not torch.equal(torch.rand(4, generator=gen), draws[0][1])
