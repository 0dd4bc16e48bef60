"""Task families on real simulators: spaces, horizons, tasks, rewards and the registry.

Episodes are short (30 random steps) so the file runs in about a minute on 2 cores; Metaworld
benchmarks are built once per family and seed and cached by the (singleton) families.
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import metaworld
import numpy as np
import pytest

from cocoa.envs import Task, TaskEnv, get_family, list_families, make_task, resolve_name
from cocoa.envs.locomotion import LOCOMOTION_FAMILIES, RandParamsMixin
from cocoa.envs.metaworld_families import (
    ML1_ENV_IDS,
    ML1Family,
    ml1_short_name,
    with_reward_version,
)

LOCOMOTION = list(LOCOMOTION_FAMILIES)
# 6-dim rand_vec (object + goal) and 3-dim rand_vec (object only) envs
ML1_SUBSET = ["reach", "push", "pick-place", "door-open", "button-press"]
REPRESENTATIVE = ML1_SUBSET + LOCOMOTION + ["ml10", "point-robot"]
TERMINATING = {"humanoid-dir", "walker-rand-params", "hopper-rand-params"}
DETERMINISTIC = {"cheetah-dir", "ant-dir"}  # the same tasks for every seed (PEARL's protocol)
N_STEPS = 30


def random_actions(env: TaskEnv, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, *env.action_space.shape))


def rollout(env: TaskEnv, actions: np.ndarray, seed: int = 0) -> tuple[list[float], list[dict]]:
    """Rewards and infos of one episode driven by ``actions`` (stops at the episode's end)."""
    env.reset(seed=seed)
    rewards, infos = [], []
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return rewards, infos


@pytest.fixture(scope="module", params=REPRESENTATIVE)
def family(request):
    return get_family(request.param)


# --------------------------------------------------------------------------- registry


def test_registry_names_every_family():
    names = list_families()
    assert len(names) == len(set(names))
    for env_id in ML1_ENV_IDS:
        assert ml1_short_name(env_id) in names
        assert resolve_name(env_id) == ml1_short_name(env_id)
    assert len(ML1_ENV_IDS) == 50
    for name in ["ml10", "ml45", *LOCOMOTION, "point-robot", "sparse-point-robot"]:
        assert name in names
    assert resolve_name("ML10-v3") == "ml10"
    assert resolve_name("Reach-V3") == "reach"
    assert get_family("pick-place-v3") is get_family("pick-place")


def test_unknown_name_names_close_matches():
    with pytest.raises(ValueError, match="reach"):
        get_family("reachh")
    with pytest.raises(ValueError, match="cheetah-vel"):
        get_family("cheetah-velocity")


def test_families_are_built_lazily_and_cheaply():
    family = get_family("hammer")
    assert family.name == "hammer" and family.full_id == "hammer-v3"
    assert family._task_cache == {}  # no benchmark built by get_family


# --------------------------------------------------------------------------- every family


def test_reset_step_with_random_actions(family):
    train, _ = family.make_tasks(0)
    env = family.make_env(train[0])
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, shape=env.action_space.shape)
    assert env.observation_space.shape == family.observation_space.shape
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape
    assert np.issubdtype(obs.dtype, np.floating)
    t = 0
    for action in random_actions(env, N_STEPS):
        obs, reward, terminated, truncated, info = env.step(action)
        t += 1
        assert obs.shape == env.observation_space.shape
        assert np.issubdtype(obs.dtype, np.floating)
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert isinstance(reward, float)
        assert ("success" in info) == family.has_success
        assert not terminated or family.name in TERMINATING
        assert truncated == (t == env.horizon)
        if terminated or truncated:
            obs, _ = env.reset()
            t = 0
    env.close()


@pytest.mark.parametrize("horizon", [None, 7])
def test_truncated_exactly_at_horizon(family, horizon):
    if horizon is None and family.name in TERMINATING:
        pytest.skip("random actions end these episodes early")
    env = family.make_env(family.make_tasks(0)[0][0], horizon=horizon)
    expected = horizon or family.horizon
    assert env.horizon == expected
    for _episode in range(2):  # a second episode starts counting from zero again
        env.reset(seed=0)
        for t, action in enumerate(random_actions(env, expected), start=1):
            _, _, terminated, truncated, _ = env.step(action)
            assert not terminated
            assert truncated == (t == expected)
    env.close()


def test_metaworld_horizon_beyond_its_default_limit():
    family = get_family("reach")
    env = family.make_env(family.make_tasks(0)[0][0], horizon=510)
    env.reset()
    truncations = [env.step(a)[3] for a in random_actions(env, 510)]
    assert not any(truncations[:-1]) and truncations[-1]
    assert env.unwrapped.max_path_length == 510


def test_two_tasks_give_different_rewards(family):
    train, _ = family.make_tasks(0)
    env = family.make_env(train[0])
    actions = random_actions(env, N_STEPS, seed=1)
    first, _ = rollout(env, actions)
    env.set_task(train[1])
    second, _ = rollout(env, actions)
    n = min(len(first), len(second))
    assert not np.allclose(first[:n], second[:n])
    env.close()


def test_same_seed_same_tasks_other_seed_other_tasks(family):
    train, test = family.make_tasks(0)
    if isinstance(family, ML1Family):
        fresh = ML1Family(family.env_id)  # no cache: rebuilds Metaworld's benchmark
    elif family.name == "ml10":
        fresh = family  # Metaworld's seeding; building ML10 again costs 8 s
    else:
        fresh = type(family)()
    assert fresh.make_tasks(0) == (train, test)
    if family.name == "ml10":
        return
    other_train, other_test = family.make_tasks(1)
    if family.name in DETERMINISTIC:
        assert (other_train, other_test) == (train, test)
    else:
        assert not {t.params for t in train} & {t.params for t in other_train}
        assert not {t.params for t in test} & {t.params for t in other_test}


def test_splits_sizes_and_disjointness(family):
    train, test = family.make_tasks(0)
    assert len(train) == family.n_train and len(test) == family.n_test
    assert [t.index for t in train] == list(range(family.n_train))
    assert [t.index for t in test] == list(range(family.n_test))
    assert {t.split for t in train} == {"train"} and {t.split for t in test} == {"test"}
    assert {t.family for t in train + test} == {family.name}
    assert not {t.params for t in train} & {t.params for t in test}
    assert len({t.params for t in train}) == len(train)


def test_tasks_are_picklable_hashable_with_oracle(family):
    train, test = family.make_tasks(0)
    for task in (train[0], train[-1], test[0]):
        assert isinstance(task, Task)
        clone = pickle.loads(pickle.dumps(task))
        assert clone == task and hash(clone) == hash(task)
        assert {task: 1}[clone] == 1
        assert task.oracle.shape == (family.oracle_dim,)
        assert task.oracle.dtype == np.float32 and np.isfinite(task.oracle).all()
        # a task restored from a pickle drives an env
        env = family.make_env(clone)
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape))
        env.close()


def test_family_rejects_foreign_task():
    env = get_family("cheetah-vel").make_env()
    with pytest.raises(ValueError):
        env.set_task(get_family("cheetah-dir").make_tasks(0)[0][0])


def test_describe_reports_spaces():
    rows = {name: get_family(name).describe() for name in ["reach", "ant-goal", "ml45"]}
    assert rows["reach"]["obs_dim"] == 39 and rows["reach"]["action_dim"] == 4
    assert rows["reach"]["full_id"] == "reach-v3"
    assert rows["ant-goal"]["obs_dim"] == 29 and rows["ant-goal"]["action_dim"] == 8
    assert rows["ml45"]["n_train"] == 2250 and rows["ml45"]["oracle_dim"] == 56


# --------------------------------------------------------------------------- Metaworld


def _step_all_ml1(env_ids):
    for env_id in env_ids:
        family = get_family(env_id)
        assert family.kind == "metaworld" and family.horizon == 200
        assert (family.n_train, family.n_test, family.explore_episodes) == (50, 10, 10)
        train, test = family.make_tasks(0)
        assert len(train) == 50 and len(test) == 10
        assert train[0].oracle.shape == (family.oracle_dim,)
        env = family.make_env(train[0])
        obs, _ = env.reset()
        assert obs.shape == (39,)
        for action in random_actions(env, 10):
            obs, reward, terminated, truncated, info = env.step(action)
            assert obs.shape == (39,) and np.isfinite(reward)
            assert not obs[-3:].any()
            assert "success" in info
        env.close()


def test_every_ml1_family_builds_its_env():
    """All 50 ML1 families: registry entry, spaces and oracle size, without Metaworld tasks."""
    for env_id in ML1_ENV_IDS:
        family = get_family(env_id)
        row = family.describe()
        assert (row["obs_dim"], row["action_dim"], row["kind"]) == (39, 4, "metaworld")
        assert row["oracle_dim"] in (3, 6) and row["has_success"]
        if family.name not in ML1_SUBSET:
            assert family._task_cache == {}  # describing a family builds no benchmark


@pytest.mark.slow
def test_every_ml1_family_builds_resets_and_steps():
    """All 50 ML1 families with Metaworld's tasks: about a minute of CPU, as Metaworld resets
    each env 100 times to build its benchmark; the fast suite steps ``ML1_SUBSET``."""
    _step_all_ml1(ML1_ENV_IDS)


@pytest.mark.parametrize("name", ["reach", "button-press"])
def test_ml1_tasks_are_metaworlds(name):
    family = get_family(name)
    seed = 0
    benchmark = metaworld.ML1(family.env_id, seed=seed)
    train, test = family.make_tasks(seed)
    expected_train = benchmark.train_tasks
    expected_test = benchmark.test_tasks[:10]
    for ours, theirs in zip(train + test, expected_train + expected_test, strict=True):
        assert ours.param("env_name") == theirs.env_name
        assert ours.param("data") == theirs.data
        np.testing.assert_array_equal(ours.features, pickle.loads(theirs.data)["rand_vec"])
    # the env runs exactly Metaworld's task: same goal as setting it on a bare env
    env = family.make_env(test[4])
    env.reset()
    bare = metaworld.env_dict.ALL_V3_ENVIRONMENTS[family.env_id]()
    bare.set_task(expected_test[4])
    bare.reset()
    np.testing.assert_array_equal(env.unwrapped._target_pos, bare._target_pos)


def test_metaworld_goal_hidden_and_success_passed_through():
    family = get_family("reach")
    train, _ = family.make_tasks(0)
    env = family.make_env(train[0])
    obs, _ = env.reset()
    assert not obs[-3:].any()
    # drive the hand to the goal: success must show up in the TaskEnv's info
    successes = []
    for _ in range(150):
        hand = obs[:3]
        goal = env.unwrapped._target_pos
        action = np.append(np.clip((goal - hand) * 30.0, -1, 1), 0.0)
        obs, _, _, _, info = env.step(action)
        assert not obs[-3:].any()
        successes.append(info["success"])
    assert max(successes) == 1.0


@pytest.mark.parametrize("name", ["reach", "push"])
def test_reward_versions_are_metaworlds(name):
    """The same actions from the same state: each version's reward is what a stock Metaworld
    env built with that ``reward_function_version`` pays, and the two versions differ."""
    base = get_family(name)
    task = base.make_tasks(0)[1][0]
    mw_task = metaworld.types.Task(env_name=task.param("env_name"), data=task.param("data"))
    actions = random_actions(base.make_env(task), 25, seed=3)
    rewards = {}
    for version in ("v1", "v2"):
        family = with_reward_version(base, version)
        assert family.reward_version == version and family.name == base.name
        for fast in (True, False):
            env = family.make_env(task, fast=fast)
            assert env.unwrapped.reward_function_version == version
            stock = metaworld.env_dict.ALL_V3_ENVIRONMENTS[base.env_id](
                reward_function_version=version
            )
            stock.set_task(mw_task)
            stock.max_path_length = env.horizon
            env.reset(seed=0)
            stock.reset()
            ours_r = [env.step(a)[1] for a in actions]
            theirs = [float(stock.step(a)[1]) for a in actions]
            assert ours_r == theirs, (version, fast)
            env.close()
            stock.close()
        rewards[version] = np.array(ours_r)
    assert not np.allclose(rewards["v1"], rewards["v2"])
    # the variants share the base family's tasks; asking twice gives the same variant
    v1 = with_reward_version(base, "v1")
    assert v1 is with_reward_version(base, "v1") and v1.with_reward_version("v2") is base
    assert v1.make_tasks(0) == base.make_tasks(0)


def test_reward_version_refusals():
    with pytest.raises(ValueError, match="must be v1 or v2"):
        with_reward_version(get_family("reach"), "v3")
    with pytest.raises(ValueError, match="Metaworld families only"):
        with_reward_version(get_family("cheetah-vel"), "v1")
    assert with_reward_version(get_family("cheetah-vel"), "v2") is get_family("cheetah-vel")


def test_ml10_spans_env_classes():
    family = get_family("ml10")
    assert family.n_train == 500 and family.n_test == 50 and family.oracle_dim == 15 + 6
    train, test = family.make_tasks(0)
    train_names = {t.param("env_name") for t in train}
    test_names = {t.param("env_name") for t in test}
    assert train_names == set(metaworld.env_dict.ML10_V3["train"])
    assert test_names == set(metaworld.env_dict.ML10_V3["test"])
    # one-hot of the class, then the padded rand_vec
    for task in (train[0], train[-1], test[0], test[-1]):
        onehot = task.oracle[:15]
        assert onehot.sum() == 1.0 and set(np.unique(onehot)) <= {0.0, 1.0}
    assert not np.array_equal(train[0].oracle[:15], test[0].oracle[:15])
    # one env switches classes on set_task; unwrapped is the Sawyer env being stepped
    env = family.make_env(train[0])
    seen = set()
    for task in (train[0], test[0], train[-1], test[-1], train[0]):
        env.set_task(task)
        obs, _ = env.reset()
        obs, reward, _, _, info = env.step(np.zeros(4))
        cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[task.param("env_name")]
        assert type(env.unwrapped) is cls
        assert obs.shape == (39,) and not obs[-3:].any() and "success" in info
        seen.add(cls)
    assert len(seen) == 4
    env.close()


@pytest.mark.slow
def test_ml45_tasks_and_env():
    family = get_family("ml45")
    train, test = family.make_tasks(0)
    assert len(train) == 2250 and len(test) == 50
    assert {t.param("env_name") for t in test} == set(metaworld.env_dict.ML45_V3["test"])
    env = family.make_env(test[0])
    env.reset()
    assert "success" in env.step(np.zeros(4))[4]


# --------------------------------------------------------------------------- locomotion


def _drive(env: TaskEnv, qvel: dict[int, float], qpos: dict[int, float] | None = None):
    """Resets, then sets some joint velocities (and positions) on the simulator directly."""
    env.reset(seed=0)
    sim = env.unwrapped
    pos, vel = sim.data.qpos.copy(), sim.data.qvel.copy()
    for i, v in (qpos or {}).items():
        pos[i] = v
    for i, v in qvel.items():
        vel[i] = v
    sim.set_state(pos, vel)
    return sim


def test_cheetah_vel_reward():
    family = get_family("cheetah-vel")
    env = family.make_env()
    action = np.full(6, 0.5)
    rewards = {}
    for goal in (0.5, 2.0):
        env.set_task(make_task("cheetah-vel", "train", 0, [goal], goal_velocity=goal))
        sim = _drive(env, qvel={0: 2.0})
        x_before = sim.data.qpos[0]
        _, reward, _, _, info = env.step(action)
        velocity = (sim.data.qpos[0] - x_before) / sim.dt
        assert info["x_velocity"] == pytest.approx(velocity)
        assert 1.0 < velocity < 3.0  # still moving forward
        expected = -abs(velocity - goal) - 0.05 * np.sum(action**2)
        assert reward == pytest.approx(expected, abs=1e-9)
        assert reward < 0
        rewards[goal] = reward
    assert rewards[2.0] > rewards[0.5]  # the goal nearer the velocity wins


def test_cheetah_dir_reward_flips_with_direction():
    family = get_family("cheetah-dir")
    train, test = family.make_tasks(0)
    assert [t.param("direction") for t in train] == [-1.0, 1.0]
    assert [t.oracle.tolist() for t in train] == [t.oracle.tolist() for t in test]
    env = family.make_env()
    rewards = {}
    for task in train:
        env.set_task(task)
        _drive(env, qvel={0: 2.0})
        _, reward, _, _, info = env.step(np.zeros(6))
        assert info["x_velocity"] > 1.0
        rewards[task.param("direction")] = reward
    assert rewards[1.0] == pytest.approx(-rewards[-1.0])
    assert rewards[1.0] > 1.0


def test_ant_dir_reward_follows_direction():
    family = get_family("ant-dir")
    env = family.make_env()
    rewards = {}
    for task in family.make_tasks(0)[0]:
        env.set_task(task)
        _drive(env, qvel={0: 2.0})
        _, reward, terminated, _, info = env.step(np.zeros(8))
        assert not terminated
        assert info["reward_forward"] == pytest.approx(task.param("direction") * info["x_velocity"])
        assert reward == pytest.approx(
            info["reward_forward"] + info["reward_ctrl"] + info["reward_contact"] + 1.0
        )
        rewards[task.param("direction")] = reward
    assert rewards[1.0] > rewards[-1.0]


def test_ant_goal_reward_closer_to_zero_near_goal():
    family = get_family("ant-goal")
    task = family.make_tasks(0)[0][0]
    goal = np.asarray(task.param("goal"))
    env = family.make_env(task)
    rewards = []
    for offset in (0.1, 2.0):
        sim = _drive(env, qvel={}, qpos={0: goal[0] + offset, 1: goal[1]})
        obs, reward, _, _, info = env.step(np.zeros(8))
        xy = sim.data.body("torso").xpos[:2]
        np.testing.assert_allclose(obs[:2], sim.data.qpos[:2])  # the obs includes x, y
        expected = -np.abs(xy - goal).sum() + info["reward_ctrl"] + info["reward_contact"]
        assert reward == pytest.approx(expected)
        assert reward < 0
        rewards.append(reward)
    assert rewards[0] > rewards[1]
    assert rewards[0] > -0.5


def test_humanoid_dir_reward_along_direction():
    family = get_family("humanoid-dir")
    env = family.make_env()
    task = family.make_tasks(0)[0][0]
    env.set_task(task)
    angle = task.param("angle")
    np.testing.assert_allclose(task.oracle, [np.cos(angle), np.sin(angle)], rtol=1e-6)
    sim = _drive(env, qvel={0: np.cos(angle), 1: np.sin(angle)})
    from gymnasium.envs.mujoco.humanoid_v5 import mass_center

    before = mass_center(sim.model, sim.data)
    _, reward, _, _, info = env.step(np.zeros(17))
    velocity = (mass_center(sim.model, sim.data) - before) / sim.dt
    along = velocity @ np.array([np.cos(angle), np.sin(angle)])
    assert along > 0.5
    assert info["reward_linvel"] == pytest.approx(1.25 * along)  # PEARL's 0.25 / timestep
    assert reward == pytest.approx(
        info["reward_linvel"] + info["reward_quadctrl"] + info["reward_impact"] + 5.0
    )


@pytest.mark.parametrize("name", ["walker-rand-params", "hopper-rand-params"])
def test_rand_params_scale_the_original_model(name):
    family = get_family(name)
    train, test = family.make_tasks(0)
    a, b = train[0], train[1]
    env = family.make_env(a)
    sim = env.unwrapped
    original = type(sim)().model  # a fresh model holds the original values

    def values():
        return {p: getattr(sim.model, p).copy() for p in RandParamsMixin.RAND_PARAMS}

    values_a = values()
    for param, base in RandParamsMixin.RAND_PARAMS.items():
        scale = base ** np.reshape(a.param(param), values_a[param].shape)
        np.testing.assert_allclose(values_a[param], getattr(original, param) * scale)
    env.set_task(b)
    values_b = values()
    for param in ("body_mass", "dof_damping", "geom_friction", "body_inertia"):
        assert not np.allclose(values_a[param], values_b[param])
    env.set_task(a)
    for param, value in values().items():
        np.testing.assert_array_equal(value, values_a[param])  # no compounding
    # the oracle holds the exponents, bounded by the log-scale limit
    assert a.oracle.shape == (family.oracle_dim,)
    assert np.abs(a.oracle).max() <= 3.0
    env.close()


# ------------------------------------------------------------------ PEARL's point robots


def test_point_robot_starts_at_a_seeded_uniform_random_point():
    family = get_family("point-robot")
    env = family.make_env()
    starts = [env.reset(seed=s)[0] for s in range(200)]
    again = [env.reset(seed=s)[0] for s in range(3)]
    np.testing.assert_array_equal(starts[:3], again)  # the env's own seeded generator
    starts = np.array(starts)
    assert starts.min() >= -1.0 and starts.max() <= 1.0
    assert starts.std(0) == pytest.approx([2 / np.sqrt(12)] * 2, rel=0.2)  # U[-1, 1]
    # later episodes continue the stream: a new start each reset
    env.reset(seed=7)
    assert not np.array_equal(env.reset()[0], env.reset()[0])
    # a step moves by the rescaled action and pays minus the new distance to the goal
    obs, _ = env.reset(seed=1)
    goal = np.asarray(env.task.param("goal"))
    nxt, reward, *_ = env.step(np.array([1.0, -0.5]))
    np.testing.assert_allclose(nxt, obs + [0.1, -0.05])
    assert reward == pytest.approx(-np.linalg.norm(nxt - goal))


def test_sparse_point_robot_goals_and_start_as_pearl():
    family = get_family("sparse-point-robot")
    train, test = family.make_tasks(0)
    goals = np.array([t.param("goal") for t in train + test])
    angles = np.sort(np.arctan2(goals[:, 1], goals[:, 0]))
    # 100 evenly spaced angles on [0, π], shuffled and split 80 / 20 by the task seed
    np.testing.assert_allclose(angles, np.linspace(0, np.pi, 100), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0)
    other = np.array([t.param("goal") for t in family.make_tasks(1)[1]])
    assert not np.allclose(goals[80:], other)
    env = family.make_env(test[0])
    for s in range(3):
        np.testing.assert_array_equal(env.reset(seed=s)[0], [0.0, 0.0])
