"""An exact fast path for Metaworld v3 Sawyer envs.

Most of a stock Metaworld ``env.step`` is Python rather than physics (``mj_step`` is about a
third of a stock reach-v3 step, less for the object envs). Profiling reach-v3, push-v3 and
pick-place-v3 (cProfile, 300 random steps each) shows where the rest goes; the figures are
CPU time per call, measured without the profiler:

* ``scipy.spatial.transform.Rotation.from_matrix(...).as_quat()`` in ``_get_quat_objects``
  (22 of the 50 envs): ~100 µs a call, mostly argument checking, a determinant, an
  ``np.isclose`` orthogonality test and object construction around a 4-number result;
* ``touching_object`` (14 envs, through ``touching_main_object``): two Python list
  comprehensions over every MuJoCo contact, ~300 µs with 4 contacts (pick-place mid-grasp);
* ``reward_utils.tolerance``: ``np.where``/``np.logical_and`` on scalars, ~10 µs a call and
  up to 6 calls a step;
* the observation: ``np.split``/``np.hstack`` per object, name look-ups (``data.body("hand")``)
  and ``np.clip``, ~80 µs besides the quaternion.

The fast versions of these take ~4 µs, ~25 µs, ~2 µs and ~5 µs.

``enable_fast_path(env)`` switches a Metaworld env to methods that compute exactly the same
observations, rewards, ``terminated``/``truncated`` and info dicts, faster (``make_fast_env``
builds one). The methods are set on that instance only: ``type(env)`` stays the stock class,
and nothing in Metaworld, scipy or numpy is modified. The methods for one env class are worked
out once and cached.

Two kinds of replacements:

1. Hand-written versions of the generic ``SawyerXYZEnv``/``MujocoEnv`` methods, used only
   where the env class does not define its own (see ``GENERIC_OVERRIDES``): ``step``,
   ``set_xyz_action``, ``_get_obs``, ``_get_curr_obs_combined_no_goal``, ``touching_object``,
   ``get_body_com``, ``get_endeff_pos``, ``_get_site_pos`` and ``_set_pos_site``. They do the
   same floating-point operations in the same order, with MuJoCo ids looked up once per name
   instead of by name each call, contacts filtered with numpy, and ``np.clip`` replaced by the
   ``maximum``/``minimum`` pair it is defined as.
2. The env's own methods that call ``reward_utils`` or scipy's ``Rotation``
   (``compute_reward``, ``_get_quat_objects``, ``_gripper_caging_reward``, ``_reward_pos``,
   ...) are re-created from their unchanged code objects with a copy of their module's globals
   in which ``reward_utils.tolerance`` and ``Rotation.from_matrix`` are exact fast versions
   (``fast_tolerance`` and ``quat_from_matrix``). Their arithmetic is therefore Metaworld's own.

Properties (``tcp_center``, ``touching_main_object``, ``_target_site_config``) cannot be
replaced on an instance and stay stock; none of the v3 envs' properties uses
``reward_utils``/``Rotation`` (``stock_methods`` lists any that would). A pickled or copied
fast env comes back stock (``enable_fast_path`` it again).

Exactness rules. ``quat_from_matrix`` follows scipy 1.17's Cython ``from_matrix``: a
determinant check, an orthogonality test of the Gram matrix (``isclose(M Mᵀ, I, atol=1e-12)``,
SVD orthogonalisation when it fails), then Markley's method: the branch is the first maximum of
``(m00, m11, m22, trace)``, which fixes the sign of the quaternion, and the result is divided by
its norm. Whenever a matrix is not clearly orthogonal (or not a float64 3x3), it defers to
scipy itself, so SVD cases and errors are scipy's. ``fast_tolerance`` handles plain float
arguments with the ``long_tail`` and ``gaussian`` sigmoids (the only ones Metaworld v3 uses)
and defers to Metaworld's ``tolerance`` for anything else. Transcendental functions are numpy's
(``np.exp``/``np.log``), so results are bit-identical, not just close; the tests check every
one of the 50 v3 envs against the stock env to 1e-9.

``measure_speedup(env_id)`` times stock and fast ``env.step`` (CPU time);
``benchmarks/metaworld_fast.py`` prints it for a few envs.
"""

from __future__ import annotations

import functools
import math
import pickle
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import metaworld
import metaworld.env_dict
import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from metaworld.sawyer_xyz_env import SawyerMocapBase, SawyerXYZEnv
from metaworld.types import Task as MetaworldTask
from metaworld.utils import reward_utils
from scipy.spatial.transform import Rotation

__all__ = [
    "GENERIC_OVERRIDES",
    "enable_fast_path",
    "fast_tolerance",
    "is_fast",
    "make_fast_env",
    "measure_speedup",
    "quat_from_matrix",
    "replaced_methods",
    "sample_task",
    "stock_methods",
]

_maximum = np.maximum
_minimum = np.minimum
_concatenate = np.concatenate
_sqrt = math.sqrt  # correctly rounded, like np.sqrt, so the same double
_FLOAT_TYPES = (float, int, np.float64)  # exact for type() checks: bool and np.float32 excluded


# --------------------------------------------------------------------------- quaternions


def _stock_quat(matrix: Any) -> np.ndarray:
    return Rotation.from_matrix(matrix).as_quat()


def quat_from_matrix(matrix: Any) -> np.ndarray:
    """``Rotation.from_matrix(matrix).as_quat()`` for one rotation matrix, without the overhead.

    Same result as scipy 1.17 (scalar-last ``[x, y, z, w]``, same sign). Matrices that are not
    a float64 ``(3, 3)`` array, or are not clearly orthogonal and right-handed, go to scipy.
    """
    if type(matrix) is not np.ndarray or matrix.shape != (3, 3) or matrix.dtype != np.float64:
        return _stock_quat(matrix)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = matrix.ravel().tolist()

    # scipy raises for det <= 0; a rotation has det 1, so anything far from it goes to scipy.
    det = (
        m00 * (m11 * m22 - m12 * m21)
        - m01 * (m10 * m22 - m12 * m20)
        + m02 * (m10 * m21 - m11 * m20)
    )
    if not det > 0.5:
        return _stock_quat(matrix)
    # scipy orthogonalises (SVD) when isclose(M @ M.T, I, rtol=1e-5, atol=1e-12) fails
    # anywhere: off-diagonal |g| <= 1e-12, diagonal |g - 1| <= 1e-12 + 1e-5. Our Gram entries
    # may differ from numpy's matmul in the last bits, so keep only matrices well inside both
    # limits and let scipy decide the rest.
    r0 = (m00, m01, m02)
    r1 = (m10, m11, m12)
    r2 = (m20, m21, m22)
    for a, b in ((r0, r1), (r0, r2), (r1, r2)):
        if abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) > 5e-13:
            return _stock_quat(matrix)
    for a in (r0, r1, r2):
        if abs(a[0] * a[0] + a[1] * a[1] + a[2] * a[2] - 1.0) > 5e-6:
            return _stock_quat(matrix)

    # Markley's method; the branch is the first maximum of (m00, m11, m22, trace).
    trace = m00 + m11 + m22
    choice, best = 0, m00
    if m11 > best:
        choice, best = 1, m11
    if m22 > best:
        choice, best = 2, m22
    if trace > best:
        choice = 3
    if choice == 0:
        x = 1 - trace + 2 * m00
        y = m10 + m01
        z = m20 + m02
        w = m21 - m12
    elif choice == 1:
        y = 1 - trace + 2 * m11
        z = m21 + m12
        x = m01 + m10
        w = m02 - m20
    elif choice == 2:
        z = 1 - trace + 2 * m22
        x = m02 + m20
        y = m12 + m21
        w = m10 - m01
    else:
        x = m21 - m12
        y = m02 - m20
        z = m10 - m01
        w = 1 + trace
    norm = _sqrt(x * x + y * y + z * z + w * w)
    return np.array((x / norm, y / norm, z / norm, w / norm))


def _quat_matches_scipy(n: int = 256, seed: int = 0) -> bool:
    """Whether ``quat_from_matrix`` equals the installed scipy bit for bit on ``n`` random
    rotations (all four branches occur). The algorithm is scipy 1.17's; should another scipy
    version compute differently, the fast path uses scipy's quaternions instead."""
    rng = np.random.default_rng(seed)  # a local generator: no global state touched
    q = rng.standard_normal((n, 4))
    matrices = Rotation.from_quat(q / np.linalg.norm(q, axis=1, keepdims=True)).as_matrix()
    return all(np.array_equal(quat_from_matrix(m), _stock_quat(m)) for m in matrices)


#: Checked once at import (about 20 ms).
QUAT_MATCHES_SCIPY = _quat_matches_scipy()


class _QuatOnly:
    """What ``_FastRotation.from_matrix`` returns: answers ``as_quat()``, defers the rest."""

    __slots__ = ("_matrix",)

    def __init__(self, matrix: Any):
        self._matrix = matrix

    def as_quat(self, canonical: bool = False, *, scalar_first: bool = False) -> np.ndarray:
        if canonical or scalar_first:
            return Rotation.from_matrix(self._matrix).as_quat(
                canonical=canonical, scalar_first=scalar_first
            )
        if not QUAT_MATCHES_SCIPY:
            return _stock_quat(self._matrix)
        return quat_from_matrix(self._matrix)

    def __getattr__(self, name: str) -> Any:
        return getattr(Rotation.from_matrix(self._matrix), name)


class _FastRotation:
    """Stands for scipy's ``Rotation`` in the fast methods' globals (only ``from_matrix``
    differs; every other attribute is scipy's)."""

    @staticmethod
    def from_matrix(matrix: Any, *, assume_valid: bool = False) -> Any:
        if assume_valid:
            return Rotation.from_matrix(matrix, assume_valid=True)
        return _QuatOnly(matrix)

    def __getattr__(self, name: str) -> Any:
        return getattr(Rotation, name)


# --------------------------------------------------------------------------- reward utils

_stock_tolerance = reward_utils.tolerance
_SCALES: dict[tuple[str, float], float] = {}


def _sigmoid_scale(sigmoid: str, value_at_1: float) -> float:
    """The sigmoid's scale, computed once per (sigmoid, value) exactly as Metaworld does."""
    key = (sigmoid, value_at_1)
    if key not in _SCALES:
        if sigmoid == "long_tail":
            _SCALES[key] = float(np.sqrt(1 / value_at_1 - 1))
        else:  # gaussian
            _SCALES[key] = float(np.sqrt(-2 * np.log(value_at_1)))
    return _SCALES[key]


def fast_tolerance(
    x: Any,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: Any = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = reward_utils._DEFAULT_VALUE_AT_MARGIN,
) -> Any:
    """``reward_utils.tolerance`` with a scalar fast path giving the same double.

    Plain floats (``float``, ``int``, ``np.float64``) with the ``long_tail`` or ``gaussian``
    sigmoid take the fast path and return a Python float, as Metaworld's does for scalars;
    everything else (arrays, other sigmoids, invalid arguments) is Metaworld's own function.
    """
    lower, upper = bounds
    if (
        type(x) not in _FLOAT_TYPES
        or type(lower) not in _FLOAT_TYPES
        or type(upper) not in _FLOAT_TYPES
        or type(margin) not in _FLOAT_TYPES
        or type(value_at_margin) not in _FLOAT_TYPES
        or sigmoid not in ("long_tail", "gaussian")
        or not lower <= upper
        or not margin >= 0
        or not 0 < value_at_margin < 1
    ):
        return _stock_tolerance(x, bounds, margin, sigmoid, value_at_margin)
    if lower <= x <= upper:
        return 1.0
    if margin == 0:
        return 0.0
    d = (lower - x if x < lower else x - upper) / margin
    scaled = d * _sigmoid_scale(sigmoid, value_at_margin)
    if sigmoid == "long_tail":
        return float(1 / (scaled**2 + 1))
    return float(np.exp(-0.5 * scaled**2))


def _fast_reward_utils() -> types.ModuleType:
    module = types.ModuleType(reward_utils.__name__, reward_utils.__doc__)
    module.__dict__.update({k: v for k, v in vars(reward_utils).items() if not k.startswith("__")})
    module.tolerance = fast_tolerance
    return module


#: Module globals the rebuilt env methods see differently: name -> (the stock object the name
#: must be bound to in the module, its fast stand-in). Everything else is the module's own.
_GLOBAL_SWAPS: dict[str, tuple[Any, Any]] = {
    "reward_utils": (reward_utils, _fast_reward_utils()),
    "tolerance": (reward_utils.tolerance, fast_tolerance),  # assembly imports it directly
    "Rotation": (Rotation, _FastRotation()),
}


def _swappable(module_globals: dict[str, Any], name: str) -> bool:
    stock = _GLOBAL_SWAPS[name][0]
    return name in module_globals and module_globals[name] is stock


# --------------------------------------------------------------------------- generic overrides


def _lookup(env: Any, table: str, kind: mujoco.mjtObj, name: str) -> int:
    """The MuJoCo id of ``name``, cached per env; -1 (not cached) when the model lacks it."""
    ids = env.__dict__.get(table)
    if ids is None:
        ids = env.__dict__[table] = {}
    idx = ids.get(name)
    if idx is None:
        idx = mujoco.mj_name2id(env.model, kind, name)
        if idx >= 0:
            ids[name] = idx
    return idx


def _body_id(env: Any, name: str) -> int:
    try:
        return env._fast_body_ids[name]
    except (AttributeError, KeyError):
        return _lookup(env, "_fast_body_ids", mujoco.mjtObj.mjOBJ_BODY, name)


def _site_id(env: Any, name: str) -> int:
    try:
        return env._fast_site_ids[name]
    except (AttributeError, KeyError):
        return _lookup(env, "_fast_site_ids", mujoco.mjtObj.mjOBJ_SITE, name)


def _geom_id(env: Any, name: str) -> int:
    try:
        return env._fast_geom_ids[name]
    except (AttributeError, KeyError):
        return _lookup(env, "_fast_geom_ids", mujoco.mjtObj.mjOBJ_GEOM, name)


def _get_body_com(self, body_name):
    """The body's position: a view of ``data.xpos`` (as ``data.body(name).xpos`` is)."""
    idx = _body_id(self, body_name)
    if idx < 0:
        return MujocoEnv.get_body_com(self, body_name)  # raises like the stock env
    return self.data.xpos[idx]


def _get_endeff_pos(self):
    return self.get_body_com("hand")


def _get_site_pos(self, site_name):
    idx = _site_id(self, site_name)
    if idx < 0:
        return SawyerXYZEnv._get_site_pos(self, site_name)
    return self.data.site_xpos[idx].copy()


def _set_pos_site(self, name, pos):
    assert isinstance(pos, np.ndarray)
    assert pos.ndim == 1
    idx = _site_id(self, name)
    if idx < 0:
        SawyerXYZEnv._set_pos_site(self, name, pos)
        return
    self.data.site_xpos[idx] = pos[:3]


_MOCAP_QUAT = np.array([1, 0, 1, 0])


def _set_xyz_action(self, action):
    # np.clip is maximum-then-minimum; calling the ufuncs skips its wrapper and keeps dtypes
    # (a float32 action stays float32 until it is added to the float64 mocap position).
    pos_delta = _minimum(_maximum(action, -1), 1) * self.action_scale
    data = self.data
    new_mocap_pos = data.mocap_pos + pos_delta[None]
    new_mocap_pos[0, :] = _minimum(_maximum(new_mocap_pos[0, :], self.mocap_low), self.mocap_high)
    data.mocap_pos = new_mocap_pos
    data.mocap_quat = _MOCAP_QUAT


def _touching_object(self, object_geom_id):
    """Both pads push on the object: each pad's summed contact force is positive."""
    left_id = _geom_id(self, "leftpad_geom")
    right_id = _geom_id(self, "rightpad_geom")
    if left_id < 0 or right_id < 0:
        return SawyerXYZEnv.touching_object(self, object_geom_id)
    data = self.data
    left_force = 0
    right_force = 0
    if data.ncon:
        contacts = data.contact
        geom1, geom2 = contacts.geom1, contacts.geom2
        with_object = (geom1 == object_geom_id) | (geom2 == object_geom_id)
        if with_object.any():
            efc_address = contacts.efc_address
            efc_force = data.efc_force
            on_left = with_object & ((geom1 == left_id) | (geom2 == left_id))
            on_right = with_object & ((geom1 == right_id) | (geom2 == right_id))
            # Python's sum, in contact order, as the stock env adds the forces
            for i in np.flatnonzero(on_left).tolist():
                left_force = left_force + efc_force[efc_address[i]]
            for i in np.flatnonzero(on_right).tolist():
                right_force = right_force + efc_force[efc_address[i]]
    return 0 < left_force and 0 < right_force


def _get_curr_obs_combined_no_goal(self):
    """Hand position, gripper opening, then (position, quaternion) per object, 18 entries."""
    data = self.data
    right = _body_id(self, "rightclaw")
    left = _body_id(self, "leftclaw")
    if right < 0 or left < 0:
        return SawyerXYZEnv._get_curr_obs_combined_no_goal(self)
    pos_hand = self.get_endeff_pos()
    obj_pos = self._get_pos_objects()
    obj_quat = self._get_quat_objects()
    n_pos, n_quat = len(obj_pos), len(obj_quat)
    assert n_pos % 3 == 0
    assert n_quat % 4 == 0
    n_objects = n_pos // 3
    if n_quat // 4 != n_objects or 7 * n_objects > self._obs_obj_max_len:
        return SawyerXYZEnv._get_curr_obs_combined_no_goal(self)

    obs = np.zeros(4 + self._obs_obj_max_len)
    obs[0:3] = pos_hand
    xpos = data.xpos
    gap = xpos[right] - xpos[left]
    # np.linalg.norm of a 1-d float64 vector is sqrt(x.dot(x))
    distance = _sqrt(gap.dot(gap)) / 0.1
    obs[3] = min(max(distance, 0.0), 1.0)
    for k in range(n_objects):
        start = 4 + 7 * k
        obs[start : start + 3] = obj_pos[3 * k : 3 * k + 3]
        obs[start + 3 : start + 7] = obj_quat[4 * k : 4 * k + 4]
    return obs


def _get_obs(self):
    pos_goal = self._get_pos_goal()
    if self._partially_observable:
        pos_goal = np.zeros_like(pos_goal)
    curr_obs = self._get_curr_obs_combined_no_goal()
    obs = _concatenate((curr_obs, self._prev_obs, np.atleast_1d(pos_goal)))
    self._prev_obs = curr_obs
    return obs


_SIM_EXCEPTION_INFO = {
    "success": False,
    "near_object": 0.0,
    "grasp_success": False,
    "grasp_reward": 0.0,
    "in_place_reward": 0.0,
    "obj_to_target": 0.0,
    "unscaled_reward": 0.0,
}


def _step(self, action):
    """``SawyerXYZEnv.step`` with the same order of effects."""
    if not self._set_task_called:
        raise RuntimeError("You must call env.set_task before using env.step")
    assert len(action) == 4, f"Actions should be size 4, got {len(action)}"
    self.set_xyz_action(action[:3])
    if self.curr_path_length >= self.max_path_length:
        raise ValueError("You must reset the env manually once truncate==True")
    self.do_simulation([action[-1], -action[-1]], n_frames=self.frame_skip)
    self.curr_path_length += 1

    # sites may have moved during simulation: put the targets back
    for site in self._target_site_config:
        self._set_pos_site(*site)

    if self._did_see_sim_exception:
        assert self._last_stable_obs is not None
        return self._last_stable_obs, 0.0, False, False, dict(_SIM_EXCEPTION_INFO)
    mujoco.mj_forward(self.model, self.data)
    space = self.sawyer_observation_space
    obs = _minimum(_maximum(self._get_obs(), space.low), space.high)
    self._last_stable_obs = obs
    reward, info = self.evaluate_state(obs, action)
    truncate = self.curr_path_length == self.max_path_length
    return np.array(obs, dtype=np.float64), reward, False, truncate, info


#: Method name -> (replacement, the class whose definition it replaces). A replacement is used
#: only when the env class inherits that very definition (no env-specific override).
GENERIC_OVERRIDES: dict[str, tuple[Callable[..., Any], type]] = {
    "step": (_step, SawyerXYZEnv),
    "set_xyz_action": (_set_xyz_action, SawyerXYZEnv),
    "_get_obs": (_get_obs, SawyerXYZEnv),
    "_get_curr_obs_combined_no_goal": (_get_curr_obs_combined_no_goal, SawyerXYZEnv),
    "touching_object": (_touching_object, SawyerXYZEnv),
    "_get_site_pos": (_get_site_pos, SawyerXYZEnv),
    "_set_pos_site": (_set_pos_site, SawyerXYZEnv),
    "get_endeff_pos": (_get_endeff_pos, SawyerMocapBase),
    "get_body_com": (_get_body_com, MujocoEnv),
}


# --------------------------------------------------------------------------- env methods


def _names_used(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


_GLOBALS_CACHE: dict[str, dict[str, Any]] = {}


def _swapped_globals(module_globals: dict[str, Any]) -> dict[str, Any]:
    """A copy of a module's globals with the fast stand-ins (one copy per module)."""
    name = module_globals["__name__"]
    if name not in _GLOBALS_CACHE:
        copied = dict(module_globals)
        copied.update(
            {k: fast for k, (_, fast) in _GLOBAL_SWAPS.items() if _swappable(module_globals, k)}
        )
        _GLOBALS_CACHE[name] = copied
    return _GLOBALS_CACHE[name]


def _rebuild_function(func: types.FunctionType) -> types.FunctionType | None:
    """``func`` re-created over the swapped globals, or None if it (and any function it
    closes over, e.g. the method a decorator wraps) uses none of the swapped names."""
    closure = func.__closure__
    new_closure = closure
    changed = False
    if closure:
        cells = []
        for cell in closure:
            try:
                content = cell.cell_contents
            except ValueError:  # empty cell
                cells.append(cell)
                continue
            rebuilt = (
                _rebuild_function(content) if isinstance(content, types.FunctionType) else None
            )
            if rebuilt is not None:
                cells.append(types.CellType(rebuilt))
                changed = True
            else:
                cells.append(cell)
        new_closure = tuple(cells)
    uses_swapped = any(
        _swappable(func.__globals__, name)
        for name in _names_used(func.__code__) & _GLOBAL_SWAPS.keys()
    )
    if not (uses_swapped or changed):
        return None
    globals_ = _swapped_globals(func.__globals__) if uses_swapped else func.__globals__
    new = types.FunctionType(func.__code__, globals_, func.__name__, func.__defaults__, new_closure)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__qualname__ = func.__qualname__
    new.__doc__ = func.__doc__
    new.__dict__.update(func.__dict__)
    new.__module__ = func.__module__
    return new


def _defining_class(cls: type, name: str) -> type | None:
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


@dataclass(frozen=True)
class _Plan:
    """What the fast path puts on the instances of one env class."""

    methods: dict[str, Callable[..., Any]]  # bound to the instance
    static: dict[str, Callable[..., Any]]  # static methods: set as they are
    stock: tuple[str, ...]  # methods that would need replacing but stay stock (properties)


_PLANS: dict[type, _Plan] = {}


def _plan(env_cls: type) -> _Plan:
    """The fast methods of a Metaworld Sawyer env class (worked out once per class)."""
    if env_cls in _PLANS:
        return _PLANS[env_cls]
    if not (isinstance(env_cls, type) and issubclass(env_cls, SawyerXYZEnv)):
        raise TypeError(f"{env_cls!r} is not a Metaworld SawyerXYZEnv class")
    methods: dict[str, Callable[..., Any]] = {}
    static: dict[str, Callable[..., Any]] = {}
    stock: list[str] = []
    for name, (replacement, owner) in GENERIC_OVERRIDES.items():
        # only where the env inherits the very definition this replaces
        if _defining_class(env_cls, name) is owner:
            methods[name] = replacement
    # Metaworld's own methods over the fast reward_utils/Rotation. The first definition in the
    # MRO is the one the env uses; later (shadowed) ones are skipped.
    seen = set(methods)
    for klass in env_cls.__mro__:
        if not klass.__module__.startswith("metaworld."):
            continue
        for name, attr in vars(klass).items():
            if name in seen or name.startswith("__"):
                continue
            seen.add(name)
            if isinstance(attr, types.FunctionType):
                rebuilt = _rebuild_function(attr)
                if rebuilt is not None:
                    methods[name] = rebuilt
            elif isinstance(attr, staticmethod) and isinstance(attr.__func__, types.FunctionType):
                rebuilt = _rebuild_function(attr.__func__)
                if rebuilt is not None:
                    static[name] = rebuilt
            elif isinstance(attr, property | classmethod):
                # a property cannot be replaced on an instance: it stays stock (still exact)
                funcs = [attr.__func__] if isinstance(attr, classmethod) else [attr.fget]
                if any(isinstance(f, types.FunctionType) and _rebuild_function(f) for f in funcs):
                    stock.append(name)
    _PLANS[env_cls] = _Plan(methods, static, tuple(stock))
    return _PLANS[env_cls]


_FAST_MARK = "_metaworld_fast"


def _strip_fast_state(self) -> Any:
    # Pickling and copying keep the stock state only (bound methods would not survive a copy),
    # so a copied or unpickled env runs the stock path until enable_fast_path is called again.
    state = type(self).__getstate__(self)
    names = set(self.__dict__.get(_FAST_MARK, ())) | {_FAST_MARK, "__getstate__"}
    inner = state.get("state") if isinstance(state, dict) else None
    if isinstance(inner, dict):
        state = dict(state, state={k: v for k, v in inner.items() if k not in names})
    return state


def enable_fast_path(env: SawyerXYZEnv) -> SawyerXYZEnv:
    """Switches a Metaworld Sawyer env to the exact fast path, in place; returns it.

    The fast methods are set on the instance, so the env keeps its class (``type(env)`` is the
    stock Metaworld class) and nothing shared is modified. Calling it twice does nothing more.
    """
    env = getattr(env, "unwrapped", env)
    if is_fast(env):
        return env
    plan = _plan(type(env))
    for name, func in plan.methods.items():
        setattr(env, name, types.MethodType(func, env))
    for name, func in plan.static.items():
        setattr(env, name, func)
    env.__getstate__ = types.MethodType(_strip_fast_state, env)
    env.__dict__[_FAST_MARK] = tuple(plan.methods) + tuple(plan.static)
    return env


def replaced_methods(env_or_cls: Any) -> tuple[str, ...]:
    """Names of the methods the fast path replaces for an env class (or an env's class)."""
    cls = (
        env_or_cls
        if isinstance(env_or_cls, type)
        else type(getattr(env_or_cls, "unwrapped", env_or_cls))
    )
    plan = _plan(cls)
    return tuple(plan.methods) + tuple(plan.static)


def stock_methods(env_or_cls: Any) -> tuple[str, ...]:
    """Methods that use ``reward_utils``/``Rotation`` but stay stock (properties and class
    methods, which the fast path does not set on instances); empty for every Metaworld v3 env."""
    cls = (
        env_or_cls
        if isinstance(env_or_cls, type)
        else type(getattr(env_or_cls, "unwrapped", env_or_cls))
    )
    return _plan(cls).stock


def is_fast(env: Any) -> bool:
    """Whether ``env`` (a Sawyer env, or a wrapper of one) runs the fast path."""
    return _FAST_MARK in vars(getattr(env, "unwrapped", env))


def make_fast_env(env_id: str, **kwargs: Any) -> SawyerXYZEnv:
    """A fast instance of the Metaworld v3 env ``env_id`` (``reach-v3``, ...); no task set."""
    return enable_fast_path(metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id](**kwargs))


# --------------------------------------------------------------------------- tasks and timing


@functools.cache
def _sampled_rand_vec(env_id: str, seed: int) -> tuple[float, ...]:
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id]
    env = env_cls()
    try:
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.np_random = np.random.default_rng(seed)
        env.reset()
        return tuple(float(v) for v in env._last_rand_vec)
    finally:
        env.close()


def sample_task(env_id: str, seed: int = 0, partially_observable: bool = True) -> MetaworldTask:
    """One valid Metaworld task for ``env_id``, drawn as ``metaworld.ML1`` draws its goals.

    Metaworld's benchmarks reset a fresh env with an unfrozen ``rand_vec`` and keep the vector
    the reset settled on (the env re-draws until object and goal are apart enough). This does
    the same once, from ``np.random.default_rng(seed)`` (no global RNG), so it costs one env
    construction (cached per ``(env_id, seed)``) instead of ML1's two and 100 resets. It is not
    one of ML1's own tasks. ``partially_observable`` hides the goal from the observation, as
    the ML benchmarks do; Metaworld's scripted policies need it visible.
    """
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id]
    data = {
        "env_cls": env_cls,
        "rand_vec": np.array(_sampled_rand_vec(env_id, int(seed)), dtype=np.float64),
        "partially_observable": bool(partially_observable),
    }
    return MetaworldTask(env_name=env_id, data=pickle.dumps(data))


def _time_steps(env: Any, actions: np.ndarray, episode: int, seed: int) -> float:
    """CPU seconds spent in ``env.step`` over ``actions``, resetting (untimed) each episode."""
    total = 0.0
    for start in range(0, len(actions), episode):
        env.reset(seed=seed)
        chunk = actions[start : start + episode]
        t0 = time.process_time()
        for action in chunk:
            env.step(action)
        total += time.process_time() - t0
    return total


def measure_speedup(
    env_id: str, steps: int = 2000, repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Stock vs fast ``env.step`` throughput for one Metaworld v3 env, in CPU time.

    Both envs get the same task; the actions are uniform in ``[-1, 1]``; episodes last
    Metaworld's 500 steps and resets are not timed. Stock and fast runs alternate, each
    ``repeats`` times, and the fastest run of each counts (the least disturbed by other work).

    Returns:
        ``{"env", "stock_steps_per_s", "fast_steps_per_s", "speedup", "steps", "repeats"}``.
    """
    if steps < 1 or repeats < 1:
        raise ValueError("steps and repeats must be >= 1")
    env_cls = metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_id]
    task = sample_task(env_id, seed)
    envs = {"stock": env_cls(), "fast": enable_fast_path(env_cls())}
    for env in envs.values():
        env.set_task(task)
    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(steps, 4))
    episode = min(steps, SawyerXYZEnv.max_path_length)
    best = {"stock": math.inf, "fast": math.inf}
    try:
        for _ in range(repeats):
            for kind, env in envs.items():
                best[kind] = min(best[kind], _time_steps(env, actions, episode, seed))
    finally:
        for env in envs.values():
            env.close()
    stock = steps / best["stock"]
    fast = steps / best["fast"]
    return {
        "env": env_id,
        "stock_steps_per_s": stock,
        "fast_steps_per_s": fast,
        "speedup": fast / stock,
        "steps": steps,
        "repeats": repeats,
    }
