"""Baselines for the meta-RL comparison, each a ``MetaLearner`` in one readable file.

* ``maml-trpo`` (``maml_trpo.py``): MAML with a vanilla policy-gradient inner step and a TRPO
  meta-update through it.
* ``rl2-ppo`` (``rl2_ppo.py``): a GRU policy whose hidden state, carried across the episodes
  of a trial, is the adaptation; trained with PPO.
* ``oracle-sac`` (``oracle_sac.py``): SAC conditioned on the task's oracle features, an
  empirical upper bound.

Importing this package registers the three with ``cocoa.algorithms``.
"""

from cocoa.algorithms import register_algorithm

from . import maml_trpo, oracle_sac, rl2_ppo

for _module in (maml_trpo, rl2_ppo, oracle_sac):
    register_algorithm(_module.SPEC)

__all__ = ["maml_trpo", "oracle_sac", "rl2_ppo"]
