"""Task families: Metaworld ML1/ML10/ML45, MuJoCo locomotion (PEARL's tasks) and point robots.

``list_families()`` names them; ``get_family(name)`` builds one (short name or full id).
"""

from .base import (
    Task,
    TaskEnv,
    TaskFamily,
    get_family,
    list_families,
    make_task,
    register_family,
    resolve_name,
)
from .locomotion import LOCOMOTION_FAMILIES
from .metaworld_families import ML1_ENV_IDS, ml1_family, ml1_short_name, ml10_family, ml45_family
from .point_robot import PointRobotFamily, SparsePointRobotFamily

# Factories are lazy: registering builds no env and no Metaworld benchmark.
for _env_id in ML1_ENV_IDS:
    register_family(ml1_short_name(_env_id), ml1_family(_env_id), aliases=[_env_id])
register_family("ml10", ml10_family, aliases=["ml10-v3"])
register_family("ml45", ml45_family, aliases=["ml45-v3"])
for _name, _family in LOCOMOTION_FAMILIES.items():
    register_family(_name, _family)
register_family("point-robot", PointRobotFamily)
register_family("sparse-point-robot", SparsePointRobotFamily)
del _env_id, _name, _family

__all__ = [
    "Task",
    "TaskEnv",
    "TaskFamily",
    "get_family",
    "list_families",
    "make_task",
    "register_family",
    "resolve_name",
]
