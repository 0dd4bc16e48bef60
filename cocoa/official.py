"""Metaworld's own meta-learning evaluator over any MetaLearner (``cocoa meta-test --official``).

``metaworld.evaluation.metalearning_evaluation`` is the protocol the Metaworld literature
reports. It drives an agent through its ``MetaLearningAgent`` protocol (``init``,
``adapt_action``, ``step``, ``adapt``, ``eval_action``, ``reset``) on a vector of test envs,
one sub-env per test goal: ``adaptation_episodes`` episodes with the exploration policy, then
``adapt``, then evaluation with ``terminate_on_success`` on (an episode ends at its first
success and the sub-env resets at once), counting ``evaluation_episodes`` episodes per task.

``OfficialAgent`` implements that protocol over one of our learners: each sub-env gets its own
exploration policy (``learner.exploration_policy`` for the sub-env's goal), whose episodes go to
``learner.adapt``; the adapted policy then acts in evaluation. The Metaworld ``Timestep`` lacks
what our policies observe (the next observation at an episode's end, the per-step success), so
the test envs are wrapped in ``_StepRecorder``, a pass-through that hands every vector step to
the agent. Actions reach the env clipped to ``[-1, 1]``, as ``TaskEnv`` clips them; episodes and
``observe`` keep the policy's own actions (float32), as our rollout does.

The test envs are Metaworld's own (``metaworld.make_ml_envs_test``: its test split, its
wrappers, ``terminate_on_success`` and pseudo-random task selection), built for the run's
family (ML1 for a single env such as ``reach``, ``ML10``/``ML45`` for those families), with the
run's reward version and its task seed, so the goals are the run's own test goals: one sub-env
per goal of our test split (10 per env class), evaluated once (``num_evals=1``). Metaworld's
default of 10 evaluations assumes 40 goals per class in meta-batches of 20; one evaluation of
every goal of our split is what our ``metaworld-v3`` protocol measures too, on the same goals.
The sub-envs run the exact fast path (``cocoa.envs.metaworld_fast``) unless ``fast=False``;
it changes no figure.

The flaw this exposes. ``evaluation`` keys successes by task *name* (the env class), not by
goal, and stops once every name has ``evaluation_episodes`` finished episodes. On ML1 every
sub-env has the same name, so the first 3 episodes to end anywhere are the ones counted. A
sub-env whose goal the agent solves quickly ends its episode at the first success, resets
and ends the next one quickly too: it can supply all the counted episodes while the other
goals are still running. An agent that solves 1 goal in 10 reads as 100% success. Our
``metaworld-v3`` protocol (``cocoa.evaluator``) runs every goal's 3 evaluation episodes to the
horizon and averages per goal. ``OfficialResult.counted_goals`` says which goals supplied the
counted episodes, and ``goal_success`` the per-goal success of all the evaluation episodes the
official loop ran. Returns differ too: the counted episodes end at their first success, so
their returns are not those of full-horizon episodes.
"""

from __future__ import annotations

import math
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import metaworld
import numpy as np
from metaworld.evaluation import metalearning_evaluation

from cocoa.envs import Task, TaskFamily
from cocoa.envs.metaworld_families import MetaworldFamily, ML1Family, MultiEnvMLFamily
from cocoa.envs.metaworld_fast import enable_fast_path

from .types import Episode, MetaLearner, Policy, Transition

#: Metaworld's own episode limit and its evaluator's defaults.
OFFICIAL_HORIZON = 500
OFFICIAL_ADAPTATION_EPISODES = 10
OFFICIAL_EVALUATION_EPISODES = 3


def official_benchmark(family: TaskFamily) -> str:
    """The name ``metaworld.make_ml_envs_test`` takes for ``family``: the env id for ML1
    (``reach-v3``), ``ML10``/``ML45``. ``ValueError`` (one line) for a non-Metaworld family."""
    if isinstance(family, ML1Family):
        return family.env_id
    if isinstance(family, MultiEnvMLFamily):
        return family.name.upper()
    raise ValueError(
        f"Metaworld's evaluator applies to Metaworld families (ML1 envs, ml10, ml45), "
        f"not {family.name!r}"
    )


def _goals_per_class(family: MetaworldFamily) -> int:
    if isinstance(family, MultiEnvMLFamily):
        return family.test_goals_per_class
    return family.n_test


def make_official_test_envs(
    family: MetaworldFamily,
    task_seed: int = 0,
    goals_per_class: int | None = None,
    horizon: int = OFFICIAL_HORIZON,
    fast: bool | None = None,
) -> gym.vector.SyncVectorEnv:
    """Metaworld's test envs for ``family``: one sub-env per test goal, the first
    ``goals_per_class`` goals of each test class (default: our test split's count), from
    ``ML1(env, task_seed)`` / ``ML10(task_seed)`` / ``ML45(task_seed)`` (the run's test goals),
    with the family's reward version and episodes of ``horizon`` steps."""
    name = official_benchmark(family)
    per_class = goals_per_class or _goals_per_class(family)
    n_classes = 1 if isinstance(family, ML1Family) else len(family.test_env_names)
    envs = metaworld.make_ml_envs_test(
        name,
        seed=int(task_seed),
        meta_batch_size=per_class * n_classes,
        total_tasks_per_cls=per_class,
        vector_strategy="sync",
        reward_function_version=family.reward_version,
        max_episode_steps=int(horizon),
    )
    if family.fast_path if fast is None else fast:
        for env in envs.envs:
            enable_fast_path(env.unwrapped)
    return envs


class _StepRecorder:
    """The test envs, passed through; every ``step`` is also handed to the agent (the
    Metaworld ``Timestep`` lacks the final observation of an episode and the success)."""

    def __init__(self, envs: gym.vector.SyncVectorEnv, agent: OfficialAgent, progress=None):
        self._envs = envs
        self._agent = agent
        self._progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._envs, name)

    def reset(self, *args, **kwargs):
        obs, infos = self._envs.reset(*args, **kwargs)
        self._agent._on_reset()
        return obs, infos

    def step(self, actions):
        out = self._envs.step(actions)
        self._agent._on_step(*out)
        if self._progress is not None:
            self._progress.update(1)
        return out


def _final(infos: dict, key: str, i: int, done: bool, default: Any) -> Any:
    """``infos[key][i]`` of the step that ended sub-env ``i``'s episode (``final_info`` when the
    vector env auto-reset it in the same step), else of this step."""
    source = infos.get("final_info", {}) if done else infos
    if key in source and source.get(f"_{key}", np.ones(len(source[key]), bool))[i]:
        return source[key][i]
    return default


@dataclass
class _EpisodeBuffer:
    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    next_observations: list = field(default_factory=list)
    terminals: list = field(default_factory=list)
    successes: list = field(default_factory=list)

    def episode(self) -> Episode:
        rewards = np.asarray(self.rewards, dtype=np.float32)
        return Episode(
            np.asarray(self.observations, dtype=np.float32),
            np.asarray(self.actions, dtype=np.float32),
            rewards,
            rewards.copy(),
            np.asarray(self.next_observations, dtype=np.float32),
            np.asarray(self.terminals, dtype=np.float32),
            np.asarray(self.successes, dtype=np.float32),
        )


class OfficialAgent:
    """Metaworld's ``MetaLearningAgent`` protocol over one of our ``MetaLearner``s.

    ``goal_of(i)`` gives the ``Task`` sub-env ``i`` currently runs (read at ``init``). Per
    sub-env: ``init`` starts a fresh exploration policy, whose finished episodes ``adapt``
    hands to ``learner.adapt``; ``eval_action`` acts with the adapted policy. Every finished
    evaluation episode is kept in ``eval_episodes`` (sub-env, goal index, Episode), in the
    order the episodes ended.
    """

    def __init__(self, learner: MetaLearner, goal_of, prior_episodes: int):
        self.learner = learner
        self._goal_of = goal_of
        self.prior_episodes = int(prior_episodes)
        self.n = 0
        self.eval_episodes: list[tuple[int, Task, Episode]] = []
        self._explore: list[Policy] = []
        self._adapted: list[Policy | None] = []
        self._goals: list[Task] = []
        self._episodes: list[list[Episode]] = []
        self._acting: list[Policy] = []
        self._evaluating = False
        self._buffers: list[_EpisodeBuffer] = []
        self._fresh: np.ndarray = np.zeros(0, dtype=bool)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ Metaworld's protocol

    def init(self) -> None:
        """A new evaluation: a fresh exploration policy per sub-env, for its goal."""
        self._goals = self._goal_of()
        self.n = len(self._goals)
        self._explore = [
            self.learner.exploration_policy(goal, prior_episodes=self.prior_episodes)
            for goal in self._goals
        ]
        self._adapted = [None] * self.n
        self._episodes = [[] for _ in range(self.n)]
        self._begin(evaluating=False)

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self._evaluating:
            self._begin(evaluating=False)
        return self._act(observations), {}

    def step(self, timestep) -> None:
        """Nothing to do: the recorder already handed this step to ``_on_step``."""

    def adapt(self) -> None:
        """Each sub-env's policy adapted on its finished exploration episodes."""
        self._adapted = [
            self.learner.adapt(policy, episodes)
            for policy, episodes in zip(self._explore, self._episodes, strict=True)
        ]

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        if not self._evaluating:
            self._begin(evaluating=True)
        return self._act(observations)

    def reset(self, env_mask: np.ndarray) -> None:
        """Sub-envs in ``env_mask`` start a new episode at their next action."""
        self._fresh |= np.asarray(env_mask, dtype=bool)

    # ---------------------------------------------------------------------------- internals

    def _begin(self, evaluating: bool) -> None:
        self._evaluating = evaluating
        self._acting = list(self._adapted if evaluating else self._explore)
        if evaluating and any(p is None for p in self._acting):
            raise RuntimeError("evaluation before adapt()")
        self._buffers = [_EpisodeBuffer() for _ in range(self.n)]
        self._fresh = np.ones(self.n, dtype=bool)
        self._last = None

    def _on_reset(self) -> None:
        self._fresh = np.ones(self.n, dtype=bool)
        self._buffers = [_EpisodeBuffer() for _ in range(self.n)]
        self._last = None

    def _act(self, observations: np.ndarray) -> np.ndarray:
        actions = np.zeros((self.n, 4), dtype=np.float32)
        for i, policy in enumerate(self._acting):
            if self._fresh[i]:
                policy.reset()
                self._buffers[i] = _EpisodeBuffer()
                self._fresh[i] = False
            actions[i] = np.asarray(policy.act(observations[i]), dtype=np.float32)
        # episodes keep the policy's actions, as our rollout does; the env gets them clipped
        self._last = (np.asarray(observations, dtype=np.float64).copy(), actions)
        return np.asarray(actions, dtype=np.float64).clip(-1.0, 1.0)

    def _on_step(self, next_obs, rewards, terminations, truncations, infos) -> None:
        if self._last is None:
            return
        observations, actions = self._last
        self._last = None
        final_obs = infos.get("final_obs")
        for i, policy in enumerate(self._acting):
            done = bool(terminations[i] or truncations[i])
            nxt = final_obs[i] if done and final_obs is not None else next_obs[i]
            nxt = np.asarray(nxt, dtype=np.float64)
            reward = float(rewards[i])
            buf = self._buffers[i]
            buf.observations.append(observations[i])
            buf.actions.append(actions[i])
            buf.rewards.append(reward)
            buf.next_observations.append(nxt)
            buf.terminals.append(float(terminations[i]))
            buf.successes.append(float(_final(infos, "success", i, done, 0.0)))
            policy.observe(
                Transition(observations[i], actions[i], reward, nxt, bool(terminations[i]), done)
            )
            if done:
                episode = buf.episode()
                if self._evaluating:
                    self.eval_episodes.append((i, self._goals[i], episode))
                else:
                    self._episodes[i].append(episode)
                self._buffers[i] = _EpisodeBuffer()
                self._fresh[i] = True


@dataclass(frozen=True)
class OfficialResult:
    """What ``metalearning_evaluation`` returned, and what its episodes were.

    Attributes:
        success_rate, mean_return: Metaworld's figures (its success keyed by env class).
        task_success: Metaworld's success rate per env class (``reach-v3``: ...).
        goal_success: per goal (test-task index), the success rate of all the evaluation
            episodes that goal ran inside the official loop (counted or not).
        counted_goals: per env class, the goals that supplied the counted episodes, in order.
        goals: number of goals (sub-envs); ``episodes``: evaluation episodes counted per
            class; ``adaptation_episodes``, ``horizon``: the loop's settings.
    """

    success_rate: float
    mean_return: float
    task_success: dict[str, float]
    goal_success: dict[int, float]
    counted_goals: dict[str, list[int]]
    goals: int
    episodes: int
    adaptation_episodes: int
    horizon: int

    def summary(self) -> dict[str, Any]:
        return {
            "success": self.success_rate,
            "return": self.mean_return,
            "task_success": self.task_success,
            "goal_success": {str(k): v for k, v in self.goal_success.items()},
            "counted_goals": self.counted_goals,
            "goals": self.goals,
            "evaluation_episodes": self.episodes,
            "adaptation_episodes": self.adaptation_episodes,
            "horizon": self.horizon,
        }


def _rand_vec_key(env_name: str, data: bytes) -> tuple[str, tuple[float, ...]]:
    return env_name, tuple(np.asarray(pickle.loads(data)["rand_vec"], dtype=np.float64).tolist())


def official_evaluate(
    learner: MetaLearner,
    family: MetaworldFamily,
    task_seed: int = 0,
    *,
    goals_per_class: int | None = None,
    horizon: int = OFFICIAL_HORIZON,
    adaptation_episodes: int = OFFICIAL_ADAPTATION_EPISODES,
    evaluation_episodes: int = OFFICIAL_EVALUATION_EPISODES,
    fast: bool | None = None,
    progress: bool = False,
) -> OfficialResult:
    """Runs ``metaworld.evaluation.metalearning_evaluation`` on ``learner`` with Metaworld's
    test envs for ``family`` (see ``make_official_test_envs``), one evaluation of every goal.

    Every sub-env's goal is one of our test tasks of ``task_seed`` (the learner's
    ``exploration_policy`` receives that ``Task``); ``RuntimeError`` if Metaworld hands out a
    goal outside our split. ``progress``: a progress bar on stderr, by vector step.
    """
    ours = {
        _rand_vec_key(t.param("env_name"), t.param("data")): t
        for t in family.make_tasks(task_seed)[1]
    }
    envs = make_official_test_envs(family, task_seed, goals_per_class, horizon, fast)

    def goal_of() -> list[Task]:
        tasks = envs.get_attr("tasks")
        current = envs.get_attr("current_task_idx")
        goals = []
        for subenv_tasks, idx in zip(tasks, current, strict=True):
            mw_task = subenv_tasks[idx]
            key = _rand_vec_key(mw_task.env_name, mw_task.data)
            if key not in ours:
                raise RuntimeError(f"Metaworld's test goal {key} is not in the run's test split")
            goals.append(ours[key])
        return goals

    agent = OfficialAgent(learner, goal_of, prior_episodes=adaptation_episodes)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        per_class = envs.num_envs // len(set(envs.get_attr("task_name")))
        eval_rounds = math.ceil(evaluation_episodes / per_class)
        bar = tqdm(
            total=(adaptation_episodes + eval_rounds) * horizon,
            desc="Metaworld's evaluator",
            unit="step",
            file=sys.stderr,
            leave=False,
        )
    try:
        success, mean_return, per_task = metalearning_evaluation(
            agent,
            _StepRecorder(envs, agent, bar),
            num_evals=1,
            adaptation_steps=1,
            adaptation_episodes=adaptation_episodes,
            evaluation_episodes=evaluation_episodes,
        )
    finally:
        if bar is not None:
            bar.close()
        envs.close()
    goal_success: dict[int, list[float]] = {}
    counted: dict[str, list[int]] = {}
    for _, goal, episode in agent.eval_episodes:
        goal_success.setdefault(goal.index, []).append(float(episode.success))
        name = goal.param("env_name")
        if len(counted.setdefault(name, [])) < evaluation_episodes:
            counted[name].append(goal.index)
    return OfficialResult(
        success_rate=float(success),
        mean_return=float(mean_return),
        task_success={str(k): float(v) for k, v in per_task.items()},
        goal_success={k: float(np.mean(v)) for k, v in sorted(goal_success.items())},
        counted_goals=counted,
        goals=int(agent.n),
        episodes=int(evaluation_episodes),
        adaptation_episodes=int(adaptation_episodes),
        horizon=int(horizon),
    )
