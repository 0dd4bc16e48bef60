"""Task samplers: protocol sizes, determinism from the seed, disjoint splits."""

from __future__ import annotations

import pytest

from cocoa.envs import get_family, list_families, make_task
from cocoa.task_samplers import TaskSampler, get_sampler

# PEARL's counts for MuJoCo and point robots, the thesis' 50/10 for Metaworld ML1.
PROTOCOL_SIZES = {
    "reach": (50, 10),
    "pick-place": (50, 10),
    "ml10": (500, 50),
    "cheetah-vel": (100, 30),
    "cheetah-dir": (2, 2),
    "ant-dir": (2, 2),
    "ant-goal": (150, 30),
    "humanoid-dir": (100, 30),
    "walker-rand-params": (40, 10),
    "hopper-rand-params": (40, 10),
    "point-robot": (80, 20),
    "sparse-point-robot": (80, 20),
}


@pytest.mark.parametrize("name", list(PROTOCOL_SIZES))
def test_sizes_and_disjoint_splits(name):
    sampler = get_sampler(name, seed=0)
    train, test = sampler.train_tasks(), sampler.test_tasks()
    assert (len(train), len(test)) == PROTOCOL_SIZES[name]
    assert not {t.params for t in train} & {t.params for t in test}
    assert all(t.split == "train" for t in train) and all(t.split == "test" for t in test)


@pytest.mark.parametrize("name", ["reach", "cheetah-vel", "ant-goal", "walker-rand-params"])
def test_deterministic_from_seed(name):
    first, again = get_sampler(name, seed=0), get_sampler(name, seed=0)
    assert first.train_tasks() == again.train_tasks()
    assert first.test_tasks() == again.test_tasks()
    other = get_sampler(name, seed=1)
    assert not {t.params for t in first.train_tasks()} & {t.params for t in other.train_tasks()}


def test_direction_families_reuse_their_two_mdps():
    """PEARL evaluates cheetah-dir and ant-dir on the two training MDPs; the test tasks are
    tagged values of the same directions."""
    for name in ("cheetah-dir", "ant-dir"):
        sampler = get_sampler(name, seed=0)
        train, test = sampler.train_tasks(), sampler.test_tasks()
        assert [t.param("direction") for t in train] == [t.param("direction") for t in test]
        assert [t.param("task_split") for t in test] == ["test", "test"]
        assert get_sampler(name, seed=5).train_tasks() == train


def test_full_id_and_fresh_lists():
    sampler = get_sampler("reach-v3", seed=0)
    assert sampler.family is get_family("reach")
    tasks = sampler.train_tasks()
    tasks.clear()
    assert len(sampler.train_tasks()) == 50


def test_every_family_has_a_sampler():
    for name in list_families():
        sampler = get_sampler(name, seed=0)
        assert isinstance(sampler, TaskSampler) and sampler.family.name == name


def test_overlapping_splits_are_rejected():
    family = get_family("point-robot")

    class Leaky(type(family)):
        def make_tasks(self, seed):
            task = make_task(self.name, "train", 0, [0.0, 0.0], goal=(0.0, 0.0))
            return [task] * self.n_train, [task] * self.n_test

    with pytest.raises(RuntimeError, match="both splits"):
        TaskSampler(Leaky(), seed=0).train_tasks()


def test_unknown_family():
    with pytest.raises(ValueError, match="cheetah-vel"):
        get_sampler("cheetah-vell")
