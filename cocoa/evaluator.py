"""One meta-test evaluator for every MetaLearner: explore → adapt → evaluate, per test task.

Protocols (by name):

* ``thesis`` (default): the family's horizon (200 on Metaworld and MuJoCo, 20 on point
  robots); the family's exploration episodes (10 on Metaworld, 2 on MuJoCo and the sparse
  point robot, 1 on the dense point robot: this suite's choice for the thesis's protocol),
  then 3 evaluation episodes with the adapted policy, whose mean return is reported.
* ``metaworld-v3``: Metaworld's own meta-learning protocol: horizon 500, 10 adaptation
  episodes, then 3 evaluation episodes; success if any step succeeds.
* ``pearl``: PEARL's online evaluation (oyster's ``collect_paths`` / ``_do_eval``), on PEARL's
  own families (point robots and MuJoCo locomotion). Per test task, two independent runs; in
  each, the first ``num_exp_traj_eval`` trajectories come from the exploration policy (PEARL:
  a fresh z from the prior for each), and every later trajectory from ``adapt`` on all the
  trajectories so far (PEARL: the posterior re-inferred from all context, a fresh z drawn from
  it), up to the family's trajectory count: point-robot 1 of 3, sparse-point-robot 5 of 20,
  MuJoCo 2 of 3 (600 steps). Actions are PEARL's mean actions. Reported: the last
  trajectory's return averaged over the two runs (PEARL's figure); the online curve, return
  by trajectory index, is kept in the records.

Reported per task: the mean return (of the context reward: sparse where the family has one)
and the success rate of the evaluation episodes; the overall figures are means over tasks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from cocoa.envs import Task, TaskFamily

from .rollout import rollout
from .types import Episode, MetaLearner

PROTOCOLS = ("thesis", "metaworld-v3", "pearl")


@dataclass(frozen=True)
class EvalProtocol:
    """How many episodes of which length are used to explore and to evaluate.

    ``online``: PEARL's protocol, where each of the ``n_eval`` trajectories after the
    ``n_explore`` exploration ones is run by a policy adapted on all trajectories so far, and
    only the last one is reported; ``n_runs`` independent runs per task are averaged.
    """

    name: str
    horizon: int
    n_explore: int
    n_eval: int
    n_runs: int = 1
    online: bool = False


def get_protocol(name: str, family: TaskFamily) -> EvalProtocol:
    """The protocol ``name`` resolved for ``family``; ``ValueError`` if it does not apply."""
    if name == "thesis":
        return EvalProtocol(name, family.horizon, family.explore_episodes, 3)
    if name == "metaworld-v3":
        if family.kind != "metaworld":
            raise ValueError(
                f"protocol 'metaworld-v3' applies to Metaworld families, not {family.name!r}"
            )
        return EvalProtocol(name, 500, 10, 3)
    if name == "pearl":
        if family.pearl_eval is None:
            raise ValueError(
                f"protocol 'pearl' applies to PEARL's own families (point robots, MuJoCo "
                f"locomotion), not {family.name!r}; use 'thesis' or 'metaworld-v3'"
            )
        n_explore, n_total = family.pearl_eval
        return EvalProtocol(name, family.horizon, n_explore, n_total - n_explore, 2, True)
    raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class TaskResult:
    """The evaluation of one test task."""

    task: int
    explore_returns: list[float]
    returns: list[float]
    successes: list[bool]
    online_returns: list[list[float]] = field(default_factory=list)  # (run, trajectory)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes))


@dataclass(frozen=True)
class EvalResult:
    """The evaluation over all test tasks."""

    protocol: str
    tasks: list[TaskResult]
    has_success: bool

    @property
    def mean_return(self) -> float:
        return float(np.mean([t.mean_return for t in self.tasks]))

    @property
    def success_rate(self) -> float:
        return float(np.mean([t.success_rate for t in self.tasks]))

    def online_curve(self) -> list[float] | None:
        """Mean return by trajectory index over tasks and runs (``online`` protocols only)."""
        curves = [run for t in self.tasks for run in t.online_returns]
        return np.mean(curves, axis=0).tolist() if curves else None

    def metrics(self, prefix: str = "meta_test") -> dict[str, float]:
        """The scalars logged in ``progress.csv``."""
        out = {f"{prefix}/return": self.mean_return}
        if self.has_success:
            out[f"{prefix}/success"] = self.success_rate
        return out

    def summary(self) -> dict:
        """The run-level figures of an evals JSON: mean return (and success), and the online
        curve on an online protocol."""
        out: dict = {"return": self.mean_return}
        if self.has_success:
            out["success"] = self.success_rate
        curve = self.online_curve()
        if curve is not None:
            out["online_returns"] = curve
        return out

    def records(self) -> list[dict]:
        """Per-task records for the run directory."""
        return [
            asdict(t) | {"mean_return": t.mean_return, "success_rate": t.success_rate}
            for t in self.tasks
        ]


def evaluate(
    learner: MetaLearner,
    family: TaskFamily,
    tasks: list[Task],
    protocol: EvalProtocol,
    seed: int = 0,
) -> EvalResult:
    """Meta-tests ``learner`` on ``tasks``.

    For each task a fresh exploration policy runs ``protocol.n_explore`` episodes and
    ``learner.adapt`` turns them into the evaluated policy, which runs ``protocol.n_eval``
    episodes; on an ``online`` protocol ``adapt`` is called again before every evaluated
    episode, on all episodes so far, and ``n_runs`` independent runs are made. ``seed`` seeds
    each task's env resets (the env's own generator, nothing global).
    """
    env = family.make_env(tasks[0], horizon=protocol.horizon)
    results = []
    for i, task in enumerate(tasks):
        env.set_task(task)
        runs = [
            _run(learner, env, task, protocol, run, seed * 1_000_003 + i + run * 100_003)
            for run in range(protocol.n_runs)
        ]
        if protocol.online:  # the last trajectory of each run is the reported one
            evals = [episodes[-1] for episodes in runs]
            explore: list[Episode] = []
        else:
            explore, evals = runs[0][: protocol.n_explore], runs[0][protocol.n_explore :]
        results.append(
            TaskResult(
                task=task.index,
                explore_returns=[e.ret for e in explore],
                returns=[e.ret for e in evals],
                successes=[e.success for e in evals],
                online_returns=[[e.ret for e in run] for run in runs] if protocol.online else [],
            )
        )
    env.close()
    return EvalResult(protocol.name, results, family.has_success)


def _run(
    learner: MetaLearner, env, task: Task, protocol: EvalProtocol, run: int, first_seed: int
) -> list[Episode]:
    """One run on ``task``: the exploration episodes, then the evaluated ones, in order."""
    seeds = iter([first_seed])  # seeds the first reset; later episodes continue the stream
    policy = learner.exploration_policy(task, prior_episodes=protocol.n_explore, run=run)
    episodes = [rollout(env, policy, seed=next(seeds, None)) for _ in range(protocol.n_explore)]
    adapted = learner.adapt(policy, episodes)
    for k in range(protocol.n_eval):
        if protocol.online and k > 0:  # re-adapted on every trajectory so far
            adapted = learner.adapt(policy, episodes)
        episodes.append(rollout(env, adapted, seed=next(seeds, None)))
    return episodes
