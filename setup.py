"""Installs cocoa and maps its folders under one namespace (cocoa, cocoa.envs, ...)."""

from setuptools import setup

setup(
    name="cocoa",
    version="0.1.0",
    description="Meta-RL benchmark suite: CoCOA, PEARL, MAML-TRPO, RL2-PPO and oracle-SAC "
    "on Metaworld and MuJoCo locomotion",
    python_requires=">=3.10",
    packages=["cocoa", "cocoa.report", "cocoa.envs", "cocoa.task_samplers", "cocoa.baselines"],
    package_dir={
        "cocoa": "cocoa",
        "cocoa.envs": "envs",
        "cocoa.task_samplers": "task_samplers",
        "cocoa.baselines": "baselines",
    },
    install_requires=[
        "torch>=2.1",
        "metaworld==3.1.1",
        "mujoco>=3.1",
        "gymnasium[mujoco]>=1.0",
        "numpy>=1.24",
        # rliable 1.2 needs arch<8, and arch 7 does not import under pandas 3
        "pandas>=2.0,<3",
        "seaborn>=0.13",
        "click>=8.1",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "rliable>=1.0",
    ],
    extras_require={
        "test": ["pytest>=8", "ruff>=0.5", "ray>=2.9"],  # the slow suite runs a Ray sweep
        "ray": ["ray>=2.9"],
    },
    entry_points={"console_scripts": ["cocoa=cocoa.cli:main"]},
)
