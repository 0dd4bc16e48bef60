"""The exact Metaworld fast path: the same observations, rewards, flags and infos as stock.

Every one of the 50 v3 envs runs a stock and a fast instance side by side, given the same task
(``sample_task``: one env construction instead of ML1's benchmark) and the same reset seed:

* a scripted episode (Metaworld's own policy for the env, on a fully observable task because
  the policies read the goal from the observation) run until a few steps after success, so the
  success, grasp and contact code paths run;
* a random-action episode on a partially observable task (the ML benchmarks' setting).

Both reward versions are checked (v2, Metaworld v3's default, and v1, the thesis's).

The default suite keeps these short (~70 s of CPU for the whole file, half of it for v1); the
``slow`` tests run full 500-step episodes on several tasks.
"""

from __future__ import annotations

import copy
import pickle
import sys
import warnings

import metaworld
import metaworld.env_dict
import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.utils import reward_utils
from scipy.spatial.transform import Rotation

from cocoa.envs import make_task
from cocoa.envs.metaworld_families import ML1_ENV_IDS, MetaworldFamily, ML1Family
from cocoa.envs.metaworld_fast import (
    enable_fast_path,
    fast_tolerance,
    is_fast,
    make_fast_env,
    measure_speedup,
    quat_from_matrix,
    replaced_methods,
    sample_task,
    stock_methods,
)

ATOL = 1e-9
SCRIPTED_MAX_STEPS = 150  # the scripted policies succeed well within this on most envs
AFTER_SUCCESS = 20  # steps kept after the first success (grasps may come later, e.g. pick-place)
RANDOM_STEPS = 40
# The scripted policies succeed within SCRIPTED_MAX_STEPS on 47 of the 50 envs (all but
# soccer, stick-pull and disassemble on these tasks); asserted on a spread of them, with grasps
# (both gripper pads in contact with the object) where the env reports them.
MUST_SUCCEED = {
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "button-press-v3",
    "drawer-close-v3",
    "hammer-v3",
    "plate-slide-v3",
    "sweep-into-v3",
    "coffee-button-v3",
}
MUST_GRASP = {"pick-place-v3", "push-v3", "hammer-v3", "sweep-into-v3"}


def _policy(env_id: str):
    return ENV_POLICY_MAP[env_id]()


def _actions(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 4))


def _pair(env_id: str, task, reward_version: str = "v2") -> tuple[SawyerXYZEnv, SawyerXYZEnv]:
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id]
    stock = env_cls(reward_function_version=reward_version)
    fast = enable_fast_path(env_cls(reward_function_version=reward_version))
    stock.set_task(task)
    fast.set_task(task)
    return stock, fast


def _flatten(obs, reward, info) -> np.ndarray:
    parts = [np.asarray(obs, dtype=np.float64).ravel(), [float(reward)]]
    parts += [np.asarray(value, dtype=np.float64).ravel() for value in info.values()]
    return np.concatenate(parts)


def assert_same_step(stock_step: tuple, fast_step: tuple, where: str) -> None:
    """obs, reward, terminated, truncated and every info entry agree to ``ATOL``."""
    obs_s, reward_s, term_s, trunc_s, info_s = stock_step
    obs_f, reward_f, term_f, trunc_f, info_f = fast_step
    assert term_f == term_s, f"{where}: terminated"
    assert trunc_f == trunc_s, f"{where}: truncated"
    assert info_f.keys() == info_s.keys(), f"{where}: info keys"
    expected = _flatten(obs_s, reward_s, info_s)
    actual = _flatten(obs_f, reward_f, info_f)
    if actual.shape == expected.shape and np.all(np.abs(actual - expected) <= ATOL):
        return  # one vectorised check per step; the entry-by-entry one below names the culprit
    np.testing.assert_allclose(obs_f, obs_s, rtol=0, atol=ATOL, err_msg=f"{where}: obs")
    np.testing.assert_allclose(reward_f, reward_s, rtol=0, atol=ATOL, err_msg=f"{where}: reward")
    for key, value in info_s.items():
        np.testing.assert_allclose(
            info_f[key], value, rtol=0, atol=ATOL, err_msg=f"{where}: info[{key!r}]"
        )


def run_scripted(
    stock: SawyerXYZEnv, fast: SawyerXYZEnv, env_id: str, max_steps: int, after_success: int, seed
) -> dict[str, float]:
    """Drives both envs with the scripted policy (on the stock observation), comparing each
    step; stops ``after_success`` steps after the first success. Returns the best info values."""
    policy = _policy(env_id)
    obs_s, _ = stock.reset(seed=seed)
    obs_f, _ = fast.reset(seed=seed)
    np.testing.assert_allclose(obs_f, obs_s, rtol=0, atol=ATOL, err_msg=f"{env_id}: reset obs")
    best = {"success": 0.0, "grasp_success": 0.0, "near_object": 0.0}
    left = None
    for t in range(max_steps):
        with warnings.catch_warnings():  # some policies warn about their own gains
            warnings.simplefilter("ignore", UserWarning)
            action = policy.get_action(obs_s)
        stock_step = stock.step(action)
        fast_step = fast.step(action)
        assert_same_step(stock_step, fast_step, f"{env_id} scripted step {t}")
        obs_s, info = stock_step[0], stock_step[4]
        for key in best:
            best[key] = max(best[key], float(info.get(key, 0.0)))
        if left is None and info["success"]:
            left = after_success
        if left is not None:
            left -= 1
            if left < 0:
                break
    return best


def run_random(stock: SawyerXYZEnv, fast: SawyerXYZEnv, env_id: str, actions, seed) -> None:
    obs_s, _ = stock.reset(seed=seed)
    obs_f, _ = fast.reset(seed=seed)
    np.testing.assert_allclose(obs_f, obs_s, rtol=0, atol=ATOL, err_msg=f"{env_id}: reset obs")
    for t, action in enumerate(actions):
        stock_step = stock.step(action)
        fast_step = fast.step(action)
        assert_same_step(stock_step, fast_step, f"{env_id} random step {t}")
        if stock_step[3]:
            break


# --------------------------------------------------------------------------- all 50 envs


@pytest.mark.parametrize("reward_version", ["v2", "v1"])
@pytest.mark.parametrize("env_id", ML1_ENV_IDS)
def test_fast_env_matches_stock(env_id, reward_version):
    """A scripted then a random episode, under each reward version: Metaworld v1's reward
    functions (``reward_function_version="v1"``, the thesis's) run other code paths of each
    env's ``compute_reward``, and the fast path must match them too."""
    full = sample_task(env_id, seed=0, partially_observable=False)
    stock, fast = _pair(env_id, full, reward_version=reward_version)
    try:
        assert fast.reward_function_version == stock.reward_function_version == reward_version
        best = run_scripted(stock, fast, env_id, SCRIPTED_MAX_STEPS, AFTER_SUCCESS, seed=0)
        hidden = sample_task(env_id, seed=0, partially_observable=True)  # same goal, hidden
        stock.set_task(hidden)
        fast.set_task(hidden)
        run_random(stock, fast, env_id, _actions(RANDOM_STEPS, seed=1), seed=1)
    finally:
        stock.close()
        fast.close()
    if env_id in MUST_SUCCEED:
        assert best["success"] == 1.0, f"{env_id}: the scripted episode should succeed"
    if env_id in MUST_GRASP and reward_version == "v2":
        assert best["grasp_success"] == 1.0, f"{env_id}: touching_object should see a grasp"


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ML1_ENV_IDS)
def test_fast_env_matches_stock_long(env_id):
    """Full 500-step episodes (truncation included), scripted and random, on 3 tasks each."""
    for seed in range(3):
        stock, fast = _pair(env_id, sample_task(env_id, seed, partially_observable=False))
        try:
            run_scripted(stock, fast, env_id, 500, after_success=500, seed=seed)
            hidden = sample_task(env_id, seed + 10, partially_observable=True)
            stock.set_task(hidden)
            fast.set_task(hidden)
            run_random(stock, fast, env_id, _actions(500, seed), seed=seed)
        finally:
            stock.close()
            fast.close()


# --------------------------------------------------------------------------- building blocks


def _random_rotations(n: int, seed: int) -> np.ndarray:
    quats = np.random.default_rng(seed).normal(size=(n, 4))
    return Rotation.from_quat(quats).as_matrix()


def test_quat_from_matrix_is_scipys_bit_for_bit():
    matrices = list(_random_rotations(2000, seed=0))
    # every branch of Markley's method, ties on the diagonal, and half-turns (sign choice)
    matrices += [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0])]
    matrices += [np.diag([-1.0, -1.0, 1.0])]
    matrices += list(Rotation.from_rotvec(np.pi * np.eye(3)).as_matrix())
    matrices += list(Rotation.from_euler("xyz", [[0, 0, 179.9], [90, 0, 0]], True).as_matrix())
    for matrix in matrices:
        expected = Rotation.from_matrix(matrix).as_quat()
        np.testing.assert_array_equal(quat_from_matrix(matrix), expected)


def test_quat_from_matrix_defers_to_scipy_off_the_rotation_group():
    scaled = 2.0 * np.eye(3)  # orthogonalised by scipy (SVD)
    np.testing.assert_array_equal(quat_from_matrix(scaled), Rotation.from_matrix(scaled).as_quat())
    noisy = _random_rotations(1, seed=3)[0] + 1e-7
    np.testing.assert_array_equal(quat_from_matrix(noisy), Rotation.from_matrix(noisy).as_quat())
    with pytest.raises(ValueError, match="determinant"):
        quat_from_matrix(np.diag([1.0, 1.0, -1.0]))


def test_fast_tolerance_equals_metaworlds():
    rng = np.random.default_rng(0)
    for sigmoid in ("long_tail", "gaussian"):
        for _ in range(500):
            x = float(rng.uniform(-0.5, 1.0))
            lower = float(rng.uniform(0.0, 0.1))
            bounds = (lower, lower + float(rng.uniform(0.0, 0.1)))
            margin = np.float64(rng.uniform(0.0, 0.5))
            args = (x, bounds, margin, sigmoid)
            fast, stock = fast_tolerance(*args), reward_utils.tolerance(*args)
            assert fast == stock and type(fast) is type(stock)
    # margin 0, an int bound, arrays (deferred to Metaworld) and Metaworld's errors
    assert fast_tolerance(0.3, (0, 0.1), 0.0) == reward_utils.tolerance(0.3, (0, 0.1), 0.0)
    xs = np.linspace(-1, 1, 7)
    np.testing.assert_array_equal(
        fast_tolerance(xs, (0, 0.1), 0.2, "long_tail"),
        reward_utils.tolerance(xs, (0, 0.1), 0.2, "long_tail"),
    )
    with pytest.raises(ValueError):
        fast_tolerance(0.3, (0, 0.1), -1.0)


def test_metaworld_itself_is_untouched():
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS["push-v3"]
    module = sys.modules[env_cls.__module__]
    before = [dict(vars(env_cls)), dict(vars(SawyerXYZEnv))]
    fast, stock = make_fast_env("push-v3"), env_cls()
    assert type(fast) is env_cls and is_fast(fast) and not is_fast(stock)
    assert before == [dict(vars(env_cls)), dict(vars(SawyerXYZEnv))]
    assert module.Rotation is Rotation and module.reward_utils.tolerance is not fast_tolerance
    assert vars(env_cls)["compute_reward"].__globals__["reward_utils"] is reward_utils
    assert fast.step.__func__ is not SawyerXYZEnv.step and stock.step.__func__ is SawyerXYZEnv.step
    names = replaced_methods(fast)
    for name in ("step", "touching_object", "_get_quat_objects", "compute_reward"):
        assert name in names
    assert enable_fast_path(fast) is fast  # idempotent
    fast.close()
    stock.close()


def test_no_reward_code_stays_stock():
    """Every env's reward code runs over the fast helpers: no method that calls
    reward_utils/Rotation is left stock (only properties would be)."""
    for env_id in ML1_ENV_IDS:
        env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id]
        replaced = replaced_methods(env_cls)
        assert stock_methods(env_cls) == (), env_id
        assert {"compute_reward", "_reward_pos"} & set(replaced), env_id


def test_copies_come_back_stock():
    env = make_fast_env("reach-v3")
    env.set_task(sample_task("reach-v3"))
    env.reset(seed=0)
    for clone in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
        assert type(clone) is type(env) and not is_fast(clone)
        assert is_fast(enable_fast_path(clone))
        clone.close()
    assert is_fast(env)
    env.close()


def test_measure_speedup_reports_both_paths():
    row = measure_speedup("reach-v3", steps=20, repeats=1)
    assert row["env"] == "reach-v3"
    assert row["stock_steps_per_s"] > 0 and row["fast_steps_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["fast_steps_per_s"] / row["stock_steps_per_s"])


# --------------------------------------------------------------------------- family wiring


def _family_task(family: ML1Family):
    mw_task = sample_task(family.env_id, seed=0)
    features = pickle.loads(mw_task.data)["rand_vec"]
    return make_task(
        family.name, "train", 0, features, env_name=mw_task.env_name, data=mw_task.data
    )


def test_make_env_fast_flag_and_default(monkeypatch):
    family = ML1Family("push-v3")
    task = _family_task(family)
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS["push-v3"]

    stock = family.make_env(task, horizon=30, fast=False)
    assert type(stock.unwrapped) is env_cls and not is_fast(stock)
    fast = family.make_env(task, horizon=30, fast=True)
    assert type(fast.unwrapped) is env_cls and is_fast(fast)
    assert fast.unwrapped.max_path_length == 30

    assert MetaworldFamily.fast_path is True  # exact on all 50 envs (tests above)
    default = family.make_env(task, horizon=30)
    assert is_fast(default) == MetaworldFamily.fast_path
    monkeypatch.setattr(MetaworldFamily, "fast_path", False)
    follows = family.make_env(task, horizon=30)
    assert not is_fast(follows)
    follows.close()

    # through TaskEnv (action rescaling, horizon truncation), fast and stock agree
    for env in (stock, fast):
        env.reset(seed=0)
    for t, action in enumerate(_actions(30, seed=2)):
        assert_same_step(stock.step(action), fast.step(action), f"TaskEnv step {t}")
    for env in (stock, fast, default):
        env.close()


def test_environment_variable_turns_the_fast_path_off_for_a_whole_process():
    import os
    import subprocess
    import sys

    code = "from cocoa.envs import get_family; print(get_family('reach').make_env().env.fast)"
    env = dict(os.environ, COCOA_METAWORLD_FAST="0")
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    env["COCOA_METAWORLD_FAST"] = "1"
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True"), off.stderr + on.stderr


def test_the_quaternion_self_check_passes_on_the_installed_scipy():
    # False would silently fall back to scipy's (slow) quaternions
    from cocoa.envs import metaworld_fast

    assert metaworld_fast.QUAT_MATCHES_SCIPY
