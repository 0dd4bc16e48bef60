"""Baselines for the meta-RL comparison, each a ``MetaLearner`` in one readable file.

* ``maml-trpo`` (``maml_trpo.py``): MAML with a vanilla policy-gradient inner step and a TRPO
  meta-update through it.
* ``rl2-ppo`` (``rl2_ppo.py``): a GRU policy whose hidden state, carried across the episodes
  of a trial, is the adaptation; trained with PPO.
* ``oracle-sac`` (``oracle_sac.py``): SAC conditioned on the task's oracle features, an
  empirical upper bound.

``ALGORITHMS`` lists their specs; ``cocoa.algorithms`` reads it (this package does not import
that registry).
"""

from . import maml_trpo, oracle_sac, rl2_ppo

ALGORITHMS = tuple(module.SPEC for module in (maml_trpo, rl2_ppo, oracle_sac))

__all__ = ["ALGORITHMS", "maml_trpo", "oracle_sac", "rl2_ppo"]
