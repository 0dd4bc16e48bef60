"""PEARL (Rakelly et al., 2019) and CoCOA (PEARL + a contrastive context loss), top to bottom.

PEARL, with its official code's semantics:

* Context c = (s, a, r[, s']); an MLP encodes each transition as a Gaussian factor and the
  posterior q(z | c) is their product; the prior is N(0, I).
* SAC of that era: twin Q(s, a, z), V(s, z), target V (Polyak τ), tanh-Gaussian
  π(a | s, z̄) on a detached z, fixed entropy temperature 1 with ``reward_scale`` in the
  Bellman target. The encoder learns from the Q loss and ``kl_lambda`` · KL(q(z|c) ‖ N(0, I)).
* Each iteration, for ``num_tasks_sample`` random training tasks: clear the task's encoder
  buffer, collect ``num_steps_prior`` steps with z ~ prior (into both buffers), then
  ``num_extra_rl_steps_posterior`` steps with z ~ posterior (RL buffer only). Then
  ``num_train_steps_per_itr`` gradient steps on ``meta_batch`` tasks at a time.

CoCOA (thesis §4) adds, in the same gradient step: N episodes of the meta-batch's encoder
buffers give two random temporal crops of ``crop_window`` steps each (query and key); queries
go through the encoder, keys through its EMA copy; each crop is a product of Gaussian
factors; InfoNCE over the N×N similarity logits plus KL(q ‖ N(0, I)) on the queries joins the
encoder loss with weight ``contrastive_weight``. ``contrastive_weight = 0`` is exactly PEARL.

Two options change the encoder's data, not its loss. ``keep_encoder_buffer`` never clears
a task's encoder buffer, so the encoder trains on every prior episode of the task rather than
on its latest ones only; ``episode_contexts`` draws each training context as whole
encoder-buffer episodes cut at ``embedding_batch_size`` rows (with 20 on the point robot: one
whole episode, the shape of the thesis protocol's meta-test context) rather than random
transitions. Collection still infers its posterior from random transitions of the buffer.
Both are off by default, as in PEARL; the README measures them on the point robot.
``contexts_per_task = K`` draws K contexts of each task per gradient step, each giving its own
z to B / K rows of the task's RL batch (PEARL: one context per task): K times as many
posteriors receive the critic's gradient, at the critic's cost.

One option changes the encoder's loss: ``reward_decoder_weight > 0`` adds a reward decoder
D(s, a, s', z) that predicts ``reward_scale`` · r of the RL batch from the same z as the
critic, and its mean squared error, times that weight, joins the encoder loss (the reward
reconstruction of VariBAD, Zintgraf et al., 2020, as an auxiliary loss). It is off by
default: PEARL's encoder learns from the critic alone.

Initialisation is the official code's (rlkit): hidden weights uniform in ±1/√fan with rlkit's
reading of ``fan`` (``weight.size(0)``), hidden biases 0.1, the last layer of Q, V and the
encoder ±3e-3, the policy's mean and log-std heads ±1e-3 (``cocoa.nets.mlp``).

Deviations from the official code that remain:

* Before each posterior-sampled training episode the posterior is inferred from the task's
  encoder buffer (the code samples the first one from the prior).
* The policy's mean and log-std heads are one linear layer with ``2 · act_dim`` outputs
  (the same function and initialisation as two heads).
* Adam is torch's fused kernel and the buffers are float32 (the code: foreach Adam, float64
  numpy buffers).

At meta-test, exploration is PEARL's posterior sampling: under the ``thesis`` protocol z ~
prior for the first episode, then z ~ q(z | all context so far) for each next one; under the
``pearl`` protocol a fresh z ~ prior for each of the first ``num_exp_traj_eval`` trajectories,
then ``adapt`` re-infers the posterior from all trajectories before each next one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cocoa.envs import Task, TaskFamily

from .augment import AugmentChain, ContextLayout, check_augment, context_std
from .buffers import MultiTaskReplayBuffer
from .context import ContextEncoder, kl_to_standard_normal, product_of_gaussians
from .contrastive import check_similarity, make_similarity
from .nets import TanhGaussianPolicy, adam, frozen, mlp, soft_update, to_device
from .np_nets import mlp_params
from .objectives import ObjectiveParts, check_objective, make_objective
from .pearl_collect import CollectJob, Phase, Weights, collect_task
from .registry import AlgorithmSpec
from .sampler import Sampler
from .seeding import meta_test_generator, rng_state, seeded, set_rng_state
from .types import Episode, Policy, Transition


@dataclass(frozen=True)
class PearlConfig:
    """Hyperparameters of PEARL and CoCOA (defaults: PEARL's code, cheetah-vel)."""

    # networks
    latent_dim: int = 5
    net_size: int = 300  # policy, Q and V: 3 hidden layers of net_size
    n_layers: int = 3
    encoder_hidden: tuple[int, ...] = (200, 200, 200)
    # self-attention blocks over a context's transitions before its factors (0: PEARL's
    # per-transition factors; see cocoa.context)
    encoder_attention_layers: int = 0
    # PEARL's recurrent encoder option: an LSTM over contexts of whole episodes in order
    # (see cocoa.context); with the objectives none (PEARL) and trajectory (CoCOA)
    encoder_recurrent: bool = False
    use_next_obs_in_context: bool = False
    # SAC
    policy_lr: float = 3e-4
    qf_lr: float = 3e-4
    vf_lr: float = 3e-4
    context_lr: float = 3e-4
    discount: float = 0.99
    reward_scale: float = 5.0
    soft_target_tau: float = 0.005
    policy_mean_reg_weight: float = 1e-3
    policy_std_reg_weight: float = 1e-3
    kl_lambda: float = 0.1
    # data
    # PEARL clears a task's encoder buffer before collecting for it, so the encoder trains on
    # that task's latest prior episodes only; True keeps every episode (up to the capacity)
    keep_encoder_buffer: bool = False
    # True: training contexts are whole encoder-buffer episodes, drawn and cut as the
    # recurrent encoder's are (the meta-test's shape), not random transitions of the buffer
    episode_contexts: bool = False
    # > 0: a reward decoder D(s, a, s', z) learns to predict reward_scale · r of the RL batch
    # from the batch's z, and its loss, times this weight, joins the encoder loss (VariBAD's
    # reward reconstruction as an auxiliary loss; 0 is PEARL, whose encoder learns only from
    # the critic)
    reward_decoder_weight: float = 0.0
    meta_batch: int = 16
    # K contexts per task and gradient step, each giving its own z to B / K of the task's
    # RL batch (PEARL: 1). K > 1 lets the critic's gradient reach the encoder through K times
    # as many posteriors at the same critic cost.
    contexts_per_task: int = 1
    batch_size: int = 256
    embedding_batch_size: int = 64
    num_initial_steps: int = 2000
    num_tasks_sample: int = 5
    num_steps_prior: int = 400
    num_steps_posterior: int = 0  # z ~ posterior, into both buffers
    num_extra_rl_steps_posterior: int = 400
    num_train_steps_per_itr: int = 2000
    replay_buffer_size: int = 1_000_000
    # CoCOA (contrastive_weight = 0 or objective "none": PEARL)
    contrastive_weight: float = 1.0
    objective: str = "trajectory"  # cocoa.objectives: trajectory, transition, masked, ...
    similarity: str = "bhattacharyya"
    crop_window: int = 50  # w of a crop; T of the masked objective's sequences
    contrastive_batch: int = 32  # N episodes per InfoNCE batch (fewer if the buffers hold fewer)
    key_momentum: float = 0.99
    query_kl_weight: float = 0.1  # weight of KL(q ‖ N(0, I)) on the queries, inside the term
    mask_prob: float = 0.5  # masked: ρ, M-CURL's
    transformer_dim: int = 32  # masked: the Transformer's width (feed-forward: twice it)
    predictor_hidden: int = 64  # predictive: width of the prediction, projection heads
    # augmentations (cocoa.augment) of the objective's views; augment_context: also of
    # PEARL's RL context (RAD), with or without an objective
    augment: tuple[str, ...] = ("crop",)
    augment_context: bool = False
    noise_scale: float = 0.1  # noise: σ of s, s' noise / the buffer's per-dimension std
    reward_noise_scale: float = 0.1  # reward-noise: σ of r noise / the reward's std
    subsample_fraction: float = 0.5  # subsample: fraction of a crop's transitions kept

    def __post_init__(self):
        check_objective(self.objective)
        check_similarity(self.similarity)
        check_augment(self.augment)
        if self.encoder_attention_layers < 0:
            raise ValueError(
                f"encoder_attention_layers must be 0 or more, got {self.encoder_attention_layers}"
            )
        if self.reward_decoder_weight < 0:
            raise ValueError(
                f"reward_decoder_weight must be 0 (off) or more, got {self.reward_decoder_weight}"
            )
        if self.contexts_per_task < 1 or self.batch_size % self.contexts_per_task:
            raise ValueError(
                f"contexts_per_task must be 1 or more and divide batch_size "
                f"({self.batch_size}), got {self.contexts_per_task}"
            )
        if self.encoder_recurrent and self.encoder_attention_layers:
            raise ValueError("encoder_recurrent and encoder_attention_layers exclude each other")
        if self.encoder_recurrent and self.contrastive and self.objective != "trajectory":
            raise ValueError(
                f"encoder_recurrent works with the objectives none and trajectory, not "
                f"{self.objective!r} (it encodes a context as a whole, not row by row)"
            )

    @property
    def contrastive(self) -> bool:
        """Whether the encoder has a context objective beyond PEARL's (else: PEARL)."""
        return self.contrastive_weight > 0 and self.objective != "none"


# --------------------------------------------------------------------------- presets

# PEARL's per-family settings (the official configs), on top of PearlConfig's defaults;
# garage's PEARL settings for Metaworld ML1.
# fmt: off
_PAPER: dict[str, dict] = {
    "cheetah-vel": dict(meta_batch=16, num_initial_steps=2000, num_steps_prior=400,
                        num_extra_rl_steps_posterior=600, num_train_steps_per_itr=2000,
                        embedding_batch_size=100),
    "cheetah-dir": dict(meta_batch=4, num_initial_steps=2000, num_steps_prior=1000,
                        num_extra_rl_steps_posterior=1000, num_train_steps_per_itr=2000,
                        embedding_batch_size=256),
    "ant-dir": dict(meta_batch=4, num_initial_steps=2000, num_steps_prior=400,
                    num_extra_rl_steps_posterior=600, num_train_steps_per_itr=4000,
                    embedding_batch_size=256),
    "ant-goal": dict(meta_batch=10, num_initial_steps=2000, num_steps_prior=400,
                     num_extra_rl_steps_posterior=600, num_train_steps_per_itr=4000,
                     embedding_batch_size=256, kl_lambda=1.0),
    "humanoid-dir": dict(meta_batch=16, num_initial_steps=2000, num_steps_prior=400,
                         num_extra_rl_steps_posterior=600, num_train_steps_per_itr=4000,
                         embedding_batch_size=256),
    "walker-rand-params": dict(meta_batch=10, num_initial_steps=2000, num_steps_prior=400,
                               num_extra_rl_steps_posterior=600, num_train_steps_per_itr=4000,
                               embedding_batch_size=100, use_next_obs_in_context=True),
    "hopper-rand-params": dict(meta_batch=10, num_initial_steps=2000, num_steps_prior=400,
                               num_extra_rl_steps_posterior=600, num_train_steps_per_itr=4000,
                               embedding_batch_size=100, use_next_obs_in_context=True),
    "point-robot": dict(num_initial_steps=200, num_steps_prior=200,
                        num_extra_rl_steps_posterior=200, num_train_steps_per_itr=1000,
                        reward_scale=100.0, crop_window=10),
    "sparse-point-robot": dict(num_initial_steps=200, num_tasks_sample=10, num_steps_prior=100,
                               num_steps_posterior=900, num_extra_rl_steps_posterior=0,
                               num_train_steps_per_itr=1000, embedding_batch_size=1024,
                               discount=0.9, reward_scale=100.0, kl_lambda=1.0, crop_window=10),
}
_PAPER_METAWORLD = dict(latent_dim=7, meta_batch=16, num_initial_steps=4000, num_tasks_sample=15,
                        num_steps_prior=750, num_extra_rl_steps_posterior=750,
                        num_train_steps_per_itr=4000, embedding_batch_size=64, reward_scale=10.0)
# quick: small networks and batches that learn on a 2-core CPU
_QUICK = dict(net_size=64, n_layers=2, encoder_hidden=(64, 64), batch_size=64, meta_batch=8,
              contrastive_batch=16, replay_buffer_size=100_000)
_QUICK_FAMILY: dict[str, dict] = {
    # 20-step episodes: a shorter horizon (γ = 0.9), a smaller reward scale and faster
    # learning rates let the critic converge within minutes on a CPU
    "point": dict(num_initial_steps=100, num_tasks_sample=10, num_steps_prior=40,
                  num_steps_posterior=0, num_extra_rl_steps_posterior=40,
                  num_train_steps_per_itr=500, embedding_batch_size=32, crop_window=10,
                  discount=0.9, reward_scale=10.0, policy_lr=1e-3, qf_lr=1e-3, vf_lr=1e-3,
                  context_lr=1e-3),
    "metaworld": dict(num_initial_steps=400, num_tasks_sample=5, num_steps_prior=400,
                      num_extra_rl_steps_posterior=400, num_train_steps_per_itr=500),
    # measured on cheetah-vel (seed 0): with 64-wide networks, batch 64 and 500 gradient steps
    # per iteration, neither PEARL nor oracle-SAC (at its own 0.4 ratio) leaves the untrained
    # return within 100k env steps; with 128 and 128, and 1,500 steps per iteration (0.47
    # per env step, about PEARL's own 0.4), PEARL with z = the true velocity reaches -116
    # at 100k, as oracle-SAC does, and PEARL itself learns (see the README)
    "locomotion": dict(net_size=128, batch_size=128, num_initial_steps=400, num_tasks_sample=4,
                       num_steps_prior=400, num_extra_rl_steps_posterior=400,
                       num_train_steps_per_itr=1500, embedding_batch_size=64),
}
# quick settings of one family, on top of its kind's
_QUICK_NAME: dict[str, dict] = {
    # PEARL's sparse config puts posterior-sampled episodes into the encoder buffer (100 prior
    # + 900 posterior steps per task): prior-z episodes from the origin rarely enter the goal
    # radius, so without them the encoder would hardly ever see a reward. Kept at quick
    # scale: 1 prior + 3 posterior episodes per task, all of them in the context batch.
    "sparse-point-robot": dict(num_steps_prior=20, num_steps_posterior=60,
                               num_extra_rl_steps_posterior=0, embedding_batch_size=80),
}
# fmt: on


def preset(family: TaskFamily, name: str, contrastive: bool = True) -> PearlConfig:
    """PEARL/CoCOA settings for ``family``: ``paper`` (published sizes) or ``quick`` (CPU)."""
    if family.kind == "metaworld":
        paper = _PAPER_METAWORLD
    else:
        paper = _PAPER.get(family.name, {})
    cfg = replace(PearlConfig(), **paper)
    if name == "quick":
        cfg = replace(cfg, **(_QUICK | _QUICK_FAMILY.get(family.kind, {})))
        cfg = replace(cfg, **_QUICK_NAME.get(family.name, {}))
    cfg = replace(cfg, crop_window=min(cfg.crop_window, family.horizon))
    if not contrastive:
        cfg = replace(cfg, contrastive_weight=0.0, objective="none")
    return cfg


# --------------------------------------------------------------------------- policies


class PearlPolicy:
    """π(a | s, z) with a task belief: collects context and resamples z at episode starts.

    ``posterior_sampling`` (meta-test exploration): a fresh z ~ prior for each of the first
    ``prior_episodes`` episodes, then z ~ q(z | all context observed so far) at each ``reset``.
    Otherwise z stays fixed.
    """

    def __init__(
        self,
        agent: Pearl,
        z: torch.Tensor,
        deterministic: bool,
        generator: torch.Generator,
        posterior_sampling: bool = False,
        prior_episodes: int = 1,
    ):
        self.agent, self.z = agent, z  # z: (latent,)
        self.deterministic = deterministic
        self.generator = generator
        self.posterior_sampling = posterior_sampling
        self.prior_episodes = prior_episodes
        self.episodes = 0  # episodes started
        self.context: list[np.ndarray] = []

    def reset(self) -> None:
        if self.posterior_sampling and self.episodes > 0:
            if self.episodes < self.prior_episodes:
                self.z = self.agent.prior_z(self.generator)
            else:
                self.z = self.agent.sample_z(self.context_tensor(), self.generator)
        self.episodes += 1

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = torch.as_tensor(observation, dtype=torch.float32, device=self.agent.device)
        x = torch.cat([obs, self.z], dim=-1)
        sample = self.agent.policy(x, deterministic=self.deterministic, generator=self.generator)
        return sample.action.cpu().numpy()

    def observe(self, t: Transition) -> None:
        if not self.posterior_sampling:  # only meta-test exploration needs its context
            return
        parts = [t.observation, t.action, [t.reward]]
        if self.agent.cfg.use_next_obs_in_context:
            parts.append(t.next_observation)
        self.context.append(
            np.concatenate([np.asarray(p, dtype=np.float32).ravel() for p in parts])
        )

    def context_tensor(self) -> torch.Tensor:
        """All observed transitions as one task's context: ``(1, n, context_dim)``."""
        return torch.as_tensor(np.stack(self.context), device=self.agent.device)[None]


# ------------------------------------------------------------------------------ agent


class Pearl:
    """PEARL / CoCOA as a ``MetaLearner`` (see the module docstring)."""

    def __init__(
        self,
        cfg: PearlConfig,
        family: TaskFamily,
        train_tasks: list[Task],
        device: torch.device,
        seed: int,
    ):
        self.cfg, self.family, self.train_tasks, self.device = cfg, family, train_tasks, device
        obs_dim, act_dim = family.obs_dim, family.action_dim
        self.context_dim = obs_dim + act_dim + 1 + (obs_dim if cfg.use_next_obs_in_context else 0)
        L, hidden = cfg.latent_dim, [cfg.net_size] * cfg.n_layers
        self.contrastive = cfg.contrastive
        layout = ContextLayout(obs_dim, act_dim, cfg.use_next_obs_in_context)
        self.augment = AugmentChain(cfg.augment, cfg, layout)
        # the buffer's per-dimension context std, for the noise augmentations: recomputed
        # (from the buffer alone, so a resumed run gets the same) before each iteration's steps
        self.needs_std = self.augment.needs_std and (self.contrastive or cfg.augment_context)
        self._context_std: torch.Tensor | None = None

        with seeded(seed):
            self.encoder = ContextEncoder(
                self.context_dim,
                L,
                cfg.encoder_hidden,
                cfg.encoder_attention_layers,
                cfg.encoder_recurrent,
            ).to(device)
            self.policy = TanhGaussianPolicy(obs_dim + L, act_dim, hidden).to(device)
            self.qf1 = mlp(obs_dim + act_dim + L, 1, hidden).to(device)
            self.qf2 = mlp(obs_dim + act_dim + L, 1, hidden).to(device)
            self.vf = mlp(obs_dim + L, 1, hidden).to(device)
            self.similarity = make_similarity(cfg.similarity, L).to(device)
            self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
            # last, so that its initial weights leave the networks above as they were
            parts = ObjectiveParts(
                cfg, layout, self.encoder, self.key_encoder, self.similarity, self.augment
            )
            self.objective = make_objective(cfg.objective, parts).to(device)
            # after every other network, and only when used: runs without it keep their weights
            self.decoder = None
            if cfg.reward_decoder_weight > 0:
                self.decoder = mlp(2 * obs_dim + act_dim + L, 1, hidden).to(device)
        self.target_vf = copy.deepcopy(self.vf).requires_grad_(False)

        self.policy_opt = adam(self.policy.parameters(), cfg.policy_lr, device)
        self.qf_opt = adam([*self.qf1.parameters(), *self.qf2.parameters()], cfg.qf_lr, device)
        self.vf_opt = adam(self.vf.parameters(), cfg.vf_lr, device)
        context_params = [
            *self.encoder.parameters(),
            *self.similarity.parameters(),
            *self.objective.parameters(),  # the objective's own heads (none for trajectory)
            *(self.decoder.parameters() if self.decoder is not None else ()),
        ]
        self.context_opt = adam(context_params, cfg.context_lr, device)

        n = len(train_tasks)
        cap = cfg.replay_buffer_size
        self.rl_buffer = MultiTaskReplayBuffer(n, cap, obs_dim, act_dim, device)
        self.enc_buffer = MultiTaskReplayBuffer(n, cap, obs_dim, act_dim, device)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.seed = seed
        self.sampler = Sampler(family)  # in-process; set_workers(n) for n processes
        self.env_steps = 0
        self.iteration = 0
        self.metric_names = (
            "qf_loss",
            "vf_loss",
            "policy_loss",
            "kl",
            "contrastive_loss",
            "contrastive_accuracy",
            "z_mean",
            "z_var",
            "train_return",
        ) + (("decoder_loss",) if self.decoder is not None else ())

    # ---------------------------------------------------------------- inference

    def sample_z(self, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """z ~ q(z | context) for one task: ``(1, n, context_dim)`` → ``(latent,)``."""
        with torch.no_grad():
            mu, var = self.encoder(context)  # (1, latent)
            eps = torch.randn(mu.shape, generator=generator, device=self.device)
            return (mu + var.sqrt() * eps)[0]

    def prior_z(self, generator: torch.Generator) -> torch.Tensor:
        """z ~ N(0, I): ``(latent,)``."""
        return torch.randn(self.cfg.latent_dim, generator=generator, device=self.device)

    # ----------------------------------------------------------------- sampling

    def set_workers(self, workers: int) -> None:
        """Collect on ``workers`` processes (1: in this process). The data collected does not
        depend on it (see ``cocoa.sampler``)."""
        self.sampler.close()
        self.sampler = Sampler(self.family, workers)

    def collection_weights(self) -> Weights:
        """Numpy copies of π and the encoder for the sampler (shipped once per collection)."""
        cfg = self.cfg
        return Weights(
            policy=mlp_params(self.policy.trunk.state_dict()),
            encoder=self.encoder.numpy_params(),
            latent_dim=cfg.latent_dim,
            embedding_batch_size=cfg.embedding_batch_size,
            use_next_obs_in_context=cfg.use_next_obs_in_context,
        )

    def _collect(self, jobs: list[tuple[int, tuple[Phase, ...]]], clear_enc: bool) -> list[float]:
        """Runs one collection job per ``(task index, phases)`` and writes the episodes into
        the buffers in job order (clearing each task's encoder buffer first when
        ``clear_enc``); returns the returns of the posterior-sampled episodes."""
        seeds = self.rng.integers(2**63 - 1, size=len(jobs))
        results = self.sampler.run(
            collect_task,
            self.collection_weights(),
            [
                CollectJob(self.train_tasks[idx], int(seed), phases)
                for (idx, phases), seed in zip(jobs, seeds)
            ],
        )
        posterior_returns = []
        for (idx, _), collected in zip(jobs, results):
            if clear_enc:
                self.enc_buffer.clear(idx)
            for c in collected:
                self.rl_buffer.add_episode(idx, c.episode)
                if c.add_to_enc:
                    self.enc_buffer.add_episode(idx, c.episode)
                if c.posterior:
                    posterior_returns.append(c.episode.ret)
                self.env_steps += len(c.episode)
        return posterior_returns

    # ------------------------------------------------------------------- update

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        """A host array on the learner's device (asynchronously on an accelerator)."""
        return to_device(x, self.device)

    def context_std(self) -> torch.Tensor | None:
        """The per-dimension std of the context in the RL buffer ``(ctx,)``, for the noise
        augmentations (None when none is used); cached until ``gradient_steps`` starts."""
        if self.needs_std and self._context_std is None:
            self._context_std = context_std(self.rl_buffer, self.cfg.use_next_obs_in_context)
        return self._context_std

    def update(self, tasks: np.ndarray) -> dict[str, torch.Tensor]:
        """One gradient step of PEARL (and CoCOA's context objective) on a meta-batch of tasks.

        ``tasks`` are host indices of training tasks, ``(T,)``. The batch is drawn with
        ``self.gen`` straight from the buffers' device storage, and nothing in the step waits
        for the device: the metrics come back as device scalars.
        """
        cfg = self.cfg
        tasks = np.asarray(tasks, dtype=np.int64)
        T, B, L = len(tasks), cfg.batch_size, cfg.latent_dim
        use_next_obs = cfg.use_next_obs_in_context
        batch = self.rl_buffer.sample(tasks, B, self.gen)
        obs, actions, rewards, next_obs, terminals = batch  # (T, B, ·)
        # whole episodes in order for a recurrent encoder or with episode_contexts; PEARL's
        # encoder reads random transitions
        sample = self.enc_buffer.sample_context
        if cfg.encoder_recurrent or cfg.episode_contexts:
            sample = self.enc_buffer.sample_sequences
        K = cfg.contexts_per_task
        context_tasks = np.repeat(tasks, K)  # (T·K,): K contexts of each task
        context = sample(context_tasks, cfg.embedding_batch_size, self.gen, use_next_obs)
        # context: (T·K, C, ctx)
        if cfg.augment_context and self.augment:  # RAD: PEARL's own context, transformed
            context = self.augment(context, self.gen, self.context_std())  # (T·K, C', ctx)

        # Gaussian factors per context transition; each posterior is the product over its
        # rows. The objective's query rows share the encoder pass when its factors are row by
        # row (PEARL's MLP); with attention each context is encoded as its own set.
        if self.contrastive:
            views = self.objective.draw(self.enc_buffer, tasks, self.gen, self.context_std())
            C, (N, n) = context.shape[1], views.query.shape[:2]
            if self.encoder.row_wise:
                # (T·K·C + N·n, ctx) rows, and their factors (T·K·C + N·n, L) each
                rows = torch.cat([context.flatten(0, 1), views.query.flatten(0, 1)])
                mu_n, var_n = self.encoder.factors(rows)
                mu_c, mu_w = mu_n.split([T * K * C, N * n])
                var_c, var_w = var_n.split([T * K * C, N * n])
            else:
                mu_c, var_c = self.encoder.factors(context)  # (T·K, C, L)
                mu_w, var_w = self.encoder.factors(views.query)  # (N, n, L)
            # (T·K, L); a recurrent encoder gives one factor per context
            mu, var = product_of_gaussians(mu_c.view(T * K, -1, L), var_c.view(T * K, -1, L))
        else:
            mu, var = self.encoder(context)  # (T·K, L)

        # task posterior and z, reparameterised so the Q loss trains the encoder
        z = mu + var.sqrt() * torch.randn(mu.shape, generator=self.gen, device=self.device)
        # summed over tasks, as PEARL does (and averaged over a task's K contexts)
        kl = kl_to_standard_normal(mu, var).sum() / K
        # (T, B, L): the k-th z of a task conditions the k-th B / K rows of its batch
        z = z.view(T, K, 1, L).expand(T, K, B // K, L).reshape(T, B, L)

        # critic: Q(s, a, z) against r·scale + γ(1 − d) V̄(s', z)
        obs_act_z = torch.cat([obs, actions, z], -1)
        q1, q2 = self.qf1(obs_act_z), self.qf2(obs_act_z)
        with torch.no_grad():  # the target network is not trained by this loss
            target_v = self.target_vf(torch.cat([next_obs, z], -1))
            q_target = cfg.reward_scale * rewards + (1.0 - terminals) * cfg.discount * target_v
        qf_loss = F.mse_loss(q1, q_target) + F.mse_loss(q2, q_target)

        # the context objective (CoCOA: InfoNCE between two temporal crops of one episode)
        contrastive_loss = torch.zeros((), device=self.device)
        accuracy = torch.zeros((), device=self.device)
        if self.contrastive:
            contrastive_loss, objective_metrics = self.objective(
                views, mu_w.view(N, -1, L), var_w.view(N, -1, L)
            )
            accuracy = objective_metrics["accuracy"]

        encoder_loss = qf_loss + cfg.kl_lambda * kl + cfg.contrastive_weight * contrastive_loss
        decoder_loss = None
        if self.decoder is not None:  # reward reconstruction from the same z as the critic's
            r_hat = self.decoder(torch.cat([obs, actions, next_obs, z], -1))  # (T, B, 1)
            decoder_loss = F.mse_loss(r_hat, cfg.reward_scale * rewards)
            encoder_loss = encoder_loss + cfg.reward_decoder_weight * decoder_loss
        self.qf_opt.zero_grad(set_to_none=True)
        self.context_opt.zero_grad(set_to_none=True)
        encoder_loss.backward()
        self.qf_opt.step()
        self.context_opt.step()

        # value and policy see z̄: the encoder learns only from the critic (and CoCOA's term)
        z_bar = z.detach()
        obs_z = torch.cat([obs, z_bar], -1)
        pi = self.policy(obs_z, generator=self.gen)
        with frozen(self.qf1, self.qf2):  # π's loss goes through Q but does not train it
            obs_pi_z = torch.cat([obs, pi.action, z_bar], -1)
            q_new = torch.min(self.qf1(obs_pi_z), self.qf2(obs_pi_z))
        v = self.vf(obs_z)
        # V target: E[Q − log π] (temperature 1); detached so V's loss does not move π or Q
        vf_loss = F.mse_loss(v, (q_new - pi.log_pi).detach())
        policy_loss = (pi.log_pi - q_new).mean()
        policy_loss = (
            policy_loss
            + cfg.policy_mean_reg_weight * pi.mean.square().mean()
            + cfg.policy_std_reg_weight * pi.log_std.square().mean()
        )
        self.vf_opt.zero_grad(set_to_none=True)
        self.policy_opt.zero_grad(set_to_none=True)
        (vf_loss + policy_loss).backward()
        self.vf_opt.step()
        self.policy_opt.step()

        soft_update(self.target_vf, self.vf, cfg.soft_target_tau)
        if self.contrastive:
            self.objective.after_step()  # the EMA key encoder (and the objective's own)
        return {
            "qf_loss": qf_loss.detach(),
            "vf_loss": vf_loss.detach(),
            "policy_loss": policy_loss.detach(),
            "kl": kl.detach() / T,
            "contrastive_loss": contrastive_loss.detach(),
            "contrastive_accuracy": accuracy,
            "z_mean": mu.detach().abs().mean(),
            "z_var": var.detach().mean(),
            **({"decoder_loss": decoder_loss.detach()} if decoder_loss is not None else {}),
        }

    def gradient_steps(self, n: int) -> dict[str, float]:
        """``n`` calls of ``update`` on meta-batches of random training tasks.

        Returns the metrics averaged over the steps (``{}`` when ``n = 0``). They are summed
        on the device and read back once at the end, so the loop itself never waits for it.
        """
        names: list[str] = []
        total: torch.Tensor | None = None  # (metrics,)
        self._context_std = None  # new data since the last steps
        for _ in range(n):
            tasks = self.rng.integers(len(self.train_tasks), size=self.cfg.meta_batch)
            metrics = self.update(tasks)
            names = list(metrics)
            step = torch.stack(list(metrics.values()))
            total = step if total is None else total + step
        if total is None:
            return {}
        return {k: v / n for k, v in zip(names, total.tolist())}

    # ------------------------------------------------------------ MetaLearner

    def train_iteration(self) -> dict[str, float | None]:
        """Collect (prior, then posterior) on random training tasks, then gradient steps."""
        cfg = self.cfg
        n = len(self.train_tasks)
        if self.iteration == 0:  # every task's buffers start with prior episodes
            initial = (Phase(cfg.num_initial_steps, posterior=False, add_to_enc=True),)
            self._collect([(idx, initial) for idx in range(n)], clear_enc=False)
        phases = tuple(
            phase
            for phase in (
                Phase(cfg.num_steps_prior, posterior=False, add_to_enc=True),
                Phase(cfg.num_steps_posterior, posterior=True, add_to_enc=True),
                Phase(cfg.num_extra_rl_steps_posterior, posterior=True, add_to_enc=False),
            )
            if phase.steps > 0
        )
        tasks = self.rng.integers(n, size=cfg.num_tasks_sample)
        # training episodes with z ~ posterior
        posterior_returns = self._collect(
            [(int(i), phases) for i in tasks], clear_enc=not cfg.keep_encoder_buffer
        )
        out: dict[str, float | None] = dict(self.gradient_steps(cfg.num_train_steps_per_itr))
        self.iteration += 1
        if not self.contrastive:  # not applicable: an empty cell in progress.csv
            out["contrastive_loss"] = out["contrastive_accuracy"] = None
        out["train_return"] = float(np.mean(posterior_returns)) if posterior_returns else None
        return out

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> Policy:
        """Posterior sampling, with mean actions (PEARL's evaluation): a fresh z from the
        prior for each of the first ``prior_episodes`` episodes, then from the posterior.

        Its z draws come from a generator seeded by (run seed, env steps, task, ``run``), so a
        meta-test is a function of the weights alone: reproducible from a checkpoint and
        independent of how often, or in which order, tasks were evaluated before.
        """
        gen = meta_test_generator(self.seed, self.env_steps, task, self.device, run)
        return PearlPolicy(
            self,
            self.prior_z(gen),
            deterministic=True,
            generator=gen,
            posterior_sampling=True,
            prior_episodes=prior_episodes,
        )

    def episode_context(self, episodes: list[Episode]) -> torch.Tensor:
        """The transitions of ``episodes`` as one task's context: ``(1, n, context_dim)``,
        with the context reward (sparse where the family has one)."""
        parts = [
            np.concatenate(
                [e.observations, e.actions, e.context_rewards[:, None]]
                + ([e.next_observations] if self.cfg.use_next_obs_in_context else []),
                axis=1,
            )
            for e in episodes
        ]
        return torch.as_tensor(np.concatenate(parts), dtype=torch.float32, device=self.device)[None]

    def adapt(self, policy: Policy, episodes: list[Episode]) -> Policy:
        """z ~ q(z | the context of ``episodes``), fixed; mean actions. With no episodes,
        z ~ prior."""
        assert isinstance(policy, PearlPolicy)
        if episodes:
            z = self.sample_z(self.episode_context(episodes), policy.generator)
        else:
            z = self.prior_z(policy.generator)
        return PearlPolicy(self, z, deterministic=True, generator=policy.generator)

    # ----------------------------------------------------------- checkpointing

    def _modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {
            "encoder": self.encoder,
            "key_encoder": self.key_encoder,
            "policy": self.policy,
            "qf1": self.qf1,
            "qf2": self.qf2,
            "vf": self.vf,
            "target_vf": self.target_vf,
            "similarity": self.similarity,
            # only objectives with networks of their own (a trajectory run's checkpoint keeps
            # the layout it had before objectives were a choice)
            **({"objective": self.objective} if self.objective.state_dict() else {}),
            **({"decoder": self.decoder} if self.decoder is not None else {}),
            "policy_opt": self.policy_opt,
            "qf_opt": self.qf_opt,
            "vf_opt": self.vf_opt,
            "context_opt": self.context_opt,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **{k: m.state_dict() for k, m in self._modules().items()},
            "rl_buffer": self.rl_buffer.state_dict(),
            "enc_buffer": self.enc_buffer.state_dict(),
            **rng_state(self.rng, gen=self.gen),
            "env_steps": self.env_steps,
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self._modules().items():
            m.load_state_dict(state[k])
        self.rl_buffer.load_state_dict(state["rl_buffer"])
        self.enc_buffer.load_state_dict(state["enc_buffer"])
        set_rng_state(state, self.rng, gen=self.gen)
        self.env_steps, self.iteration = state["env_steps"], state["iteration"]


def _pearl_preset(family: TaskFamily, name: str) -> PearlConfig:
    return preset(family, name, contrastive=False)


# read by cocoa.algorithms (this module does not import the registry)
ALGORITHMS = (
    AlgorithmSpec("cocoa", PearlConfig, preset, Pearl, parallel_sampling=True),
    AlgorithmSpec("pearl", PearlConfig, _pearl_preset, Pearl, parallel_sampling=True),
)
