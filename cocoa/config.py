"""Run configuration: a frozen dataclass, JSON round trips and user overrides.

The algorithm's own settings live in its config dataclass (``RunConfig.algo_config``), built
from per-family presets by the algorithm's ``preset`` function (``cocoa.algorithms``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from cocoa.envs import TaskFamily


@dataclass(frozen=True)
class RunConfig:
    """One meta-training run.

    Attributes:
        env: task family short name.
        algo: algorithm name.
        seed: seeds networks, sampling and evaluation.
        task_seed: seeds the train/test task split (fixed across run seeds by default, so
            every seed and algorithm meets the same tasks).
        steps: env-step budget of meta-training (steps collected on training tasks).
        preset: ``paper`` or ``quick``.
        protocol: evaluation protocol name (``thesis``, ``metaworld-v3``, ``pearl``).
        reward_version: Metaworld's reward function, ``v1`` or ``v2`` (its
            ``reward_function_version``). ``v2`` (Metaworld v3's default) pays at most 10 per
            step; ``v1`` is the reward the thesis ran (Metaworld v1's; reach pays up to about
            2,000 per step), so thesis values compare only with ``v1`` runs. Non-Metaworld
            families have one reward and take only ``v2``. A ``config.json`` written before
            this setting existed reads as ``v2``.
        device: ``cpu`` or ``cuda`` (resolved; never ``auto`` once written).
        eval_interval: env steps between meta-tests (and checkpoints).
        threads: torch's intra-op CPU threads. 1 by default: the suite's networks are small,
            and on a busy 2-core machine two threads per process were measured 10x slower
            than one (the threads spin while they wait for each other).
        workers: sampler processes that collect episodes (1: in the learner's process). The
            data collected does not depend on it, so neither do the results.
        algo_config: the algorithm's frozen config.
    """

    env: str
    algo: str
    seed: int = 0
    task_seed: int = 0
    steps: int = 0
    preset: str = "quick"
    protocol: str = "thesis"
    reward_version: str = "v2"
    device: str = "cpu"
    eval_interval: int = 0
    threads: int = 1
    workers: int = 1
    algo_config: Any = field(default=None)


def run_family(cfg: RunConfig) -> TaskFamily:
    """The task family a run meta-trains and meta-tests on: ``cfg.env`` with the run's reward
    version (``ValueError``, one line, for a version the family does not have)."""
    from cocoa.envs import get_family
    from cocoa.envs.metaworld_families import with_reward_version

    return with_reward_version(get_family(cfg.env), cfg.reward_version)


def default_budget(family: TaskFamily, preset: str) -> tuple[int, int]:
    """``(steps, eval_interval)`` defaults: the thesis's 2.5M steps on Metaworld."""
    if family.kind == "metaworld":
        return (2_500_000, 50_000) if preset == "paper" else (2_500_000, 25_000)
    if family.kind == "point":
        return (200_000, 10_000) if preset == "paper" else (60_000, 4_000)
    return (5_000_000, 50_000) if preset == "paper" else (1_000_000, 20_000)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(cfg)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Checks/converts a JSON value to the annotated field type ``tp``."""
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    return value


def apply_overrides(cfg: Any, overrides: dict[str, Any], where: str = "") -> Any:
    """``cfg`` with ``overrides`` (a nested dict) applied; unknown keys and wrong types are a
    ``ValueError`` naming the key."""
    if not is_dataclass(cfg):
        raise ValueError(f"{where or 'config'} cannot take overrides")
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in fields(cfg)}
    changes = {}
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ValueError(f"unknown config key {path!r}; known: {', '.join(sorted(names))}")
        current = getattr(cfg, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{path} must be a mapping")
            changes[key] = apply_overrides(current, value, path)
        else:
            changes[key] = _coerce(value, hints[key], path)
    return replace(cfg, **changes)


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Reads a JSON or YAML override file into a dict (``ValueError`` on bad content)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001  (any parse error becomes one line)
        raise ValueError(f"cannot parse config file {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping")
    return data


def from_dict(data: dict[str, Any], algo_config_cls: type) -> RunConfig:
    """Rebuilds a ``RunConfig`` from ``to_dict`` output (a missing key takes its default:
    a run written before ``reward_version`` existed is a ``v2`` run)."""
    from cocoa.envs.metaworld_families import check_reward_version

    data = dict(data)
    algo = data.pop("algo_config")
    base = RunConfig(env=data.pop("env"), algo=data.pop("algo"))
    cfg = apply_overrides(base, data)
    check_reward_version(cfg.reward_version)
    algo_default = algo_config_cls()
    return replace(cfg, algo_config=apply_overrides(algo_default, algo, "algo_config"))


def make_run_config(
    *,
    env: str,
    algo: str,
    seed: int,
    steps: int | None,
    preset: str,
    protocol: str,
    device: str,
    similarity: str | None,
    overrides: dict[str, Any] | None,
    task_seed: int = 0,
    workers: int = 1,
    reward_version: str = "v2",
) -> RunConfig:
    """Resolves user choices into a ``RunConfig``: the family's preset for the algorithm,
    ``preset="auto"`` (paper on CUDA, quick on CPU), the default budget when ``steps`` is
    None, then ``overrides`` (a nested mapping, as in a ``--config`` file; it may set
    ``reward_version`` too). ``reward_version``: ``v1`` or ``v2`` (``v1`` on Metaworld
    families only). Every invalid choice is a ``ValueError`` with one readable line."""
    from cocoa.algorithms import PRESETS, get_algorithm
    from cocoa.envs import get_family
    from cocoa.envs.metaworld_families import check_reward_version
    from cocoa.evaluator import get_protocol
    from cocoa.nets import resolve_device

    family = get_family(env)
    check_reward_version(reward_version, family)
    spec = get_algorithm(algo)
    dev = resolve_device(device)
    if preset == "auto":
        preset = "paper" if dev.type == "cuda" else "quick"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose auto, {', '.join(PRESETS)}")
    algo_config = spec.preset(family, preset)
    if similarity is not None:
        if getattr(algo_config, "contrastive_weight", 0) <= 0:  # PEARL has no contrastive term
            raise ValueError(f"--similarity applies to --algo cocoa, not {algo!r}")
        from cocoa.contrastive import check_similarity

        check_similarity(similarity)
        algo_config = replace(algo_config, similarity=similarity)
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    default_steps, interval = default_budget(family, preset)
    cfg = RunConfig(
        env=family.name,
        algo=algo,
        seed=seed,
        task_seed=task_seed,
        steps=default_steps if steps is None else steps,
        preset=preset,
        protocol=protocol,
        reward_version=reward_version,
        device=dev.type,
        eval_interval=interval,
        workers=workers,
        algo_config=algo_config,
    )
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    for key, low in (("steps", 0), ("eval_interval", 1), ("threads", 1), ("workers", 1)):
        if getattr(cfg, key) < low:
            raise ValueError(f"{key} must be >= {low}, got {getattr(cfg, key)}")
    spec.check_workers(cfg.workers)
    if cfg.algo != algo or cfg.env != family.name:
        raise ValueError("env and algo cannot be changed by a config file")
    get_protocol(cfg.protocol, family)  # validates the (possibly overridden) protocol
    check_reward_version(cfg.reward_version, family)  # and the reward version
    return cfg
