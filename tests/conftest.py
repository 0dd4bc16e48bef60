"""Fixtures shared by the test files."""

import io

import pytest
import torch

from cocoa.envs import get_family
from cocoa.task_samplers import TaskSampler


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: intra-op threads only add synchronisation (and stall on a busy CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def family():
    """The point robot, the suite's own small test bed."""
    return get_family("point-robot")


@pytest.fixture(scope="module")
def tasks(family):
    """Its training tasks for task seed 0."""
    return TaskSampler(family, 0).train_tasks()


@pytest.fixture
def checkpoint_round_trip():
    """``state -> state`` through ``torch.save``/``torch.load`` onto the CPU, as a checkpoint
    makes it and ``load_checkpoint`` reads it (so no tensor is shared with the learner it came
    from, and a GPU learner's state comes back on the host)."""

    def round_trip(state: dict) -> dict:
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        return torch.load(buf, map_location="cpu", weights_only=False)

    return round_trip


@pytest.fixture
def check_resume(checkpoint_round_trip):
    """``check(make, modules)``: a learner ``make(3)`` trains one iteration; ``make(99)`` loads
    its checkpoint; the next iteration's metrics, the weights of ``modules(learner)`` and the
    env-step counts must then be equal. Returns both learners for further checks."""

    def check(make, modules):
        a = make(3)
        a.train_iteration()
        b = make(99)
        b.load_state_dict(checkpoint_round_trip(a.state_dict()))
        assert a.train_iteration() == b.train_iteration()
        for ma, mb in zip(modules(a), modules(b)):
            for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
                assert torch.equal(va, vb), k
        assert a.env_steps == b.env_steps
        return a, b

    return check
