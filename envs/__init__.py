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
from .point_robot import PointRobotFamily, SparsePointRobotFamily

register_family("point-robot", PointRobotFamily)
register_family("sparse-point-robot", SparsePointRobotFamily)

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
