"""Context objectives and augmentations: hand-computed losses, masking statistics, gradient
routing, seeded augmentations, the registries' import direction, and each objective trained
and resumed through the command line."""

import ast
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_pearl import TINY as PEARL_TINY
from torch import nn

from cocoa.augment import (
    AUGMENTATION_REGISTRY,
    AUGMENTATIONS,
    AugmentChain,
    ContextLayout,
    context_std,
)
from cocoa.buffers import MultiTaskReplayBuffer
from cocoa.contrastive import info_nce, make_similarity
from cocoa.envs import get_family
from cocoa.objectives import (
    OBJECTIVES,
    Masked,
    Objective,
    ObjectiveParts,
    Views,
    contrastive_choices,
    make_objective,
    mask_positions,
    register_objective,
)
from cocoa.pearl import Pearl, PearlConfig, preset
from cocoa.types import Episode

ROOT = Path(__file__).resolve().parents[1]
# a learner small enough for one iteration in a second: test_pearl's, with the objectives'
# own widths
TINY = dict(PEARL_TINY, transformer_dim=16, predictor_hidden=16)
CONTRASTIVE = ["trajectory", "transition", "masked", "predictive-cpc", "predictive-spr"]
LEARNED = [*CONTRASTIVE, "reward"]  # every objective with a loss
OBS, ACT = 2, 2
LAYOUT = ContextLayout(OBS, ACT, use_next_obs=True)  # context row: s (2), a (2), r (1), s' (2)


def config(**kw) -> PearlConfig:
    base = dict(latent_dim=3, encoder_hidden=(8,), crop_window=4, contrastive_batch=5)
    base.update(use_next_obs_in_context=True, transformer_dim=8, predictor_hidden=8)
    return replace(PearlConfig(), **(base | kw))


def parts(cfg: PearlConfig, seed: int = 0) -> ObjectiveParts:
    from cocoa.context import ContextEncoder

    torch.manual_seed(seed)
    encoder = ContextEncoder(LAYOUT.width, cfg.latent_dim, cfg.encoder_hidden)
    key_encoder = ContextEncoder(LAYOUT.width, cfg.latent_dim, cfg.encoder_hidden)
    key_encoder.requires_grad_(False)
    similarity = make_similarity(cfg.similarity, cfg.latent_dim)
    augment = AugmentChain(cfg.augment, cfg, LAYOUT)
    return ObjectiveParts(cfg, LAYOUT, encoder, key_encoder, similarity, augment)


def episode(n: int, rng: np.random.Generator) -> Episode:
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    rewards = rng.normal(size=n).astype(np.float32)
    return Episode(
        observations=obs,
        actions=rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32),
        rewards=rewards,
        context_rewards=rewards,
        next_observations=rng.normal(size=(n, OBS)).astype(np.float32),
        terminals=np.zeros(n, dtype=np.float32),
        successes=np.zeros(n, dtype=np.float32),
    )


@pytest.fixture(scope="module")
def buffer() -> MultiTaskReplayBuffer:
    """3 tasks x 4 episodes of 10 random steps."""
    rng = np.random.default_rng(0)
    buf = MultiTaskReplayBuffer(3, 1000, OBS, ACT)
    for task in range(3):
        for _ in range(4):
            buf.add_episode(task, episode(10, rng))
    return buf


def views_and_loss(objective: Objective, buffer, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    std = context_std(buffer, use_next_obs=True)
    views = objective.draw(buffer, np.array([0, 1, 2]), gen, std)
    mu_n, var_n = objective.parts.encoder.factors(views.query)  # (N, n, L) each
    loss, metrics = objective(views, mu_n, var_n)
    return views, loss, metrics


# --------------------------------------------------------------------------- registries


def test_registries_list_the_objectives_and_augmentations_of_the_issue():
    assert OBJECTIVES[:6] == [
        "trajectory",
        "transition",
        "masked",
        "predictive-cpc",
        "predictive-spr",
        "none",
    ]
    assert AUGMENTATIONS[:4] == ["crop", "noise", "reward-noise", "subsample"]
    assert PearlConfig().objective == "trajectory" and PearlConfig().augment == ("crop",)


def test_unknown_names_are_one_line_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown objective 'maskd'; did you mean masked\?"):
        PearlConfig(objective="maskd")
    with pytest.raises(ValueError, match="known: crop, noise, reward-noise, subsample"):
        PearlConfig(augment=("crop", "blur"))
    with pytest.raises(ValueError, match="named twice"):
        PearlConfig(augment=("noise", "noise"))


def test_command_line_choices_apply_where_they_mean_something():
    family = get_family("point-robot")
    cocoa, pearl = preset(family, "quick"), preset(family, "quick", contrastive=False)
    assert pearl.objective == "none" and not pearl.contrastive and cocoa.contrastive
    cfg = contrastive_choices(cocoa, objective="transition")
    assert (cfg.objective, cfg.augment) == ("transition", ("noise",))  # CURL needs noise
    cfg = contrastive_choices(cocoa, objective="masked", augment="crop,subsample")
    assert (cfg.objective, cfg.augment) == ("masked", ("crop", "subsample"))
    with pytest.raises(ValueError, match="applies to --algo cocoa"):
        contrastive_choices(pearl, objective="masked")
    with pytest.raises(ValueError, match="--augment-context"):
        contrastive_choices(pearl, augment="noise")
    rad = contrastive_choices(pearl, augment="noise", augment_context=True)
    assert rad.augment == ("noise",) and rad.augment_context and not rad.contrastive
    assert contrastive_choices(pearl, objective="masked", strict=False) == pearl


def _cocoa_imports(path: Path) -> set[str]:
    """Every ``cocoa.*`` module ``path`` imports, at any depth of the file."""
    package = "cocoa.baselines" if path.parent.name == "baselines" else "cocoa"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("cocoa")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base.startswith("cocoa"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_registry_imports_run_one_way():
    # the learners and the registries they fill never import the look-up module
    for name in ("pearl.py", "objectives.py", "augment.py", "contrastive.py", "registry.py"):
        assert "cocoa.algorithms" not in _cocoa_imports(ROOT / "cocoa" / name), name
    for path in (ROOT / "baselines").glob("*.py"):
        assert "cocoa.algorithms" not in _cocoa_imports(path), path.name
    # the shared registry module imports nothing of the suite at run time
    tree = ast.parse((ROOT / "cocoa" / "registry.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not any(
        getattr(n, "level", 0) or "cocoa" in (getattr(n, "module", "") or "") for n in top_level
    )


def test_a_user_objective_registered_by_decorator_trains(tasks, family):
    @register_objective("test-mean-match")
    class MeanMatch(Objective):
        """pulls each crop's posterior mean to its key's"""

        def draw(self, buffer, tasks, gen, std):
            q, k = self._crops(buffer, tasks, self.parts.cfg.crop_window, gen)
            return Views(q, k)

        def forward(self, views, mu_n, var_n):
            mu_k, _ = self._keys(views.key)
            loss = (mu_n.mean(1) - mu_k.mean(1)).square().sum(-1).mean()
            return loss, {"accuracy": torch.ones(())}

    cfg = replace(preset(family, "quick"), **TINY, objective="test-mean-match")
    agent = Pearl(cfg, family, tasks[:6], torch.device("cpu"), 0)
    metrics = agent.train_iteration()
    assert metrics["contrastive_accuracy"] == 1.0 and metrics["contrastive_loss"] > 0


# ------------------------------------------------------------------------------ masking


def test_masking_fractions_match_rho_and_80_10_10_within_binomial_noise():
    gen = torch.Generator().manual_seed(0)
    masked, zeroed, replaced = mask_positions((400, 50), 0.5, gen, torch.device("cpu"))
    n = masked.numel()
    m = int(masked.sum())

    def within(count: int, trials: int, p: float) -> bool:  # 5 binomial standard deviations
        return abs(count - trials * p) <= 5 * math.sqrt(trials * p * (1 - p))

    assert within(m, n, 0.5)
    assert within(int(zeroed.sum()), m, 0.8)
    assert within(int(replaced.sum()), m, 0.1)
    assert within(int((masked & ~zeroed & ~replaced).sum()), m, 0.1)
    assert not (zeroed & ~masked).any() and not (replaced & ~masked).any()
    assert not (zeroed & replaced).any()


def test_masked_query_zeroes_replaces_and_keeps_rows_and_the_key_is_unmasked(buffer):
    cfg = config(objective="masked", crop_window=8)
    obj = make_objective("masked", parts(cfg))
    gen = torch.Generator().manual_seed(1)
    views = obj.draw(buffer, np.array([0, 1, 2]), gen, None)
    q, k, mask = views
    N, T = mask.shape
    assert q.shape == k.shape == (N, T, LAYOUT.width) and N == cfg.contrastive_batch
    # the key is a crop of T consecutive steps of one episode: s'_t == s_{t+1} is not
    # guaranteed by random episodes, so check it against the buffer's own rows instead
    rows = buffer.storage[..., : LAYOUT.width].reshape(-1, LAYOUT.width)
    for i in range(N):
        start = int(((rows[:, None] == k[i, 0]).all(-1)).nonzero()[0, 0])
        torch.testing.assert_close(k[i], rows[start : start + T], rtol=0, atol=0)
    flat_k = k.flatten(0, 1)
    for i in range(N):
        for t in range(T):
            if not mask[i, t]:
                assert torch.equal(q[i, t], k[i, t])
            elif q[i, t].abs().sum() == 0:
                continue  # zeroed
            elif not torch.equal(q[i, t], k[i, t]):  # replaced by another row of the batch
                own = i * T + t
                hits = (flat_k == q[i, t]).all(-1).nonzero().flatten().tolist()
                assert hits and own not in hits


def test_masked_loss_counts_only_masked_positions_against_all_positions_of_its_sequence():
    cfg = config(objective="masked", similarity="neg-euclidean")
    obj = Masked(parts(cfg))
    N, T, L = 3, 4, cfg.latent_dim
    torch.manual_seed(2)
    mu_n, var_n = torch.randn(N, T, L), torch.rand(N, T, L) + 0.5
    key_rows = torch.randn(N, T, LAYOUT.width)
    mask = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.bool)
    loss, metrics = obj(Views(key_rows, key_rows, mask), mu_n, var_n)
    # by hand: eq. 4 of M-CURL per sequence, summed over masked positions, mean over sequences
    mu_q, _ = obj.transformer(mu_n, var_n)
    mu_k, _ = obj.parts.key_encoder.factors(key_rows)
    total, hits = 0.0, 0
    for i, t in mask.nonzero().tolist():
        logits = -(mu_q[i, t] - mu_k[i]).square().sum(-1)  # (T,) over its own sequence
        total += -torch.log_softmax(logits, 0)[t].item()
        hits += int(logits.argmax() == t)
    assert loss.item() == pytest.approx(total / N, rel=1e-5)
    assert metrics["accuracy"].item() == pytest.approx(hits / 3)
    # no masked position: nothing to reconstruct, no loss
    none = obj(Views(key_rows, key_rows, torch.zeros_like(mask)), mu_n, var_n)[0]
    assert none.item() == 0.0


# ---------------------------------------------------------------- InfoNCE and gradients


@pytest.mark.parametrize("name", ["trajectory", "transition", "predictive-cpc"])
def test_info_nce_labels_are_the_diagonal(name, buffer):
    cfg = config(objective=name, similarity="neg-euclidean", query_kl_weight=0.0)
    obj = make_objective(name, parts(cfg))
    # the key encoder equal to the query encoder: a crop's query and key are then one
    # embedding whenever the views are the same rows (transition without noise)
    obj.parts.key_encoder.load_state_dict(obj.parts.encoder.state_dict())
    views, loss, metrics = views_and_loss(obj, buffer)
    mu_n, var_n = obj.parts.encoder.factors(views.query)
    if name == "predictive-cpc":
        mu_hat, var_hat, mu_k, var_k, _ = obj.predict(views, mu_n, var_n)
        logits = -(mu_hat[:, None] - mu_k[None]).square().sum(-1)
    else:
        from cocoa.context import product_of_gaussians

        mu_q, _ = product_of_gaussians(mu_n, var_n)
        mu_k, _ = obj.parts.key_encoder(views.key)
        logits = -(mu_q[:, None] - mu_k[None]).square().sum(-1)  # (N, N)
    N = logits.shape[0]
    expected = -torch.log_softmax(logits, 1).diagonal().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(info_nce(logits).item(), rel=1e-5)
    assert metrics["accuracy"].item() == pytest.approx(
        (logits.argmax(1) == torch.arange(N)).float().mean().item()
    )
    if name == "transition":  # identical views and encoders: every query finds its key
        assert torch.equal(views.query, views.key) and metrics["accuracy"].item() == 1.0


def test_reward_decoder_loss_is_one_minus_r2_of_the_other_crops_rewards(buffer):
    """By hand: the decoder reads (posterior mean of the query crop, s, a, s') of each row of
    the other crop and is scored by its squared error over those rows' reward variance."""
    from cocoa.context import kl_to_standard_normal, product_of_gaussians

    cfg = config(objective="reward", query_kl_weight=0.5)
    obj = make_objective("reward", parts(cfg))
    views, loss, metrics = views_and_loss(obj, buffer)
    assert views.query.shape == views.key.shape and not torch.equal(views.query, views.key)
    mu_n, var_n = obj.parts.encoder.factors(views.query)
    mu_q, var_q = product_of_gaussians(mu_n, var_n)  # (N, L)
    squared, rewards = [], []
    for i in range(views.key.shape[0]):
        for row in views.key[i]:
            s, a, r, s2 = row[:OBS], row[OBS : OBS + ACT], row[OBS + ACT], row[OBS + ACT + 1 :]
            r_hat = obj.decoder(torch.cat([mu_q[i], s, a, s2]))
            squared.append((r_hat - r).item() ** 2)
            rewards.append(r.item())
    unexplained = np.mean(squared) / np.var(rewards, ddof=1)
    kl = kl_to_standard_normal(mu_q, var_q).mean().item()
    assert loss.item() == pytest.approx(unexplained + 0.5 * kl, rel=1e-5)
    assert metrics["accuracy"].item() == pytest.approx(1 - unexplained, rel=1e-5)
    # the rewards to predict are the targets: change them and the loss changes
    shifted = views.key.clone()
    shifted[..., OBS + ACT] += 1.0
    assert obj(Views(views.query, shifted), mu_n, var_n)[0].item() != pytest.approx(loss.item())


@pytest.mark.parametrize("name", LEARNED)
def test_gradients_reach_the_query_encoder_and_heads_not_the_key_encoder(name, buffer):
    cfg = config(objective=name, augment=("crop", "noise"))
    obj = make_objective(name, parts(cfg))
    _, loss, _ = views_and_loss(obj, buffer)
    loss.backward()
    for p in obj.parts.encoder.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for p in obj.parts.key_encoder.parameters():
        assert not p.requires_grad and p.grad is None
    trained = {n: p for n, p in obj.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in obj.named_parameters() if not p.requires_grad}
    if name == "masked":
        assert any(n.startswith("transformer.blocks.1.qkv") for n in trained)
    for n, p in trained.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    for n, p in frozen.items():  # spr's target projection
        assert p.grad is None, n
    assert (name == "predictive-spr") == bool(frozen)


def test_spr_target_projection_follows_the_online_one_by_ema(buffer):
    cfg = config(objective="predictive-spr", key_momentum=0.9)
    obj = make_objective("predictive-spr", parts(cfg))
    with torch.no_grad():
        for p in obj.projection.parameters():
            p.add_(1.0)
    before = [p.clone() for p in obj.target_projection.parameters()]
    obj.after_step()
    for new, old, online in zip(
        obj.target_projection.parameters(), before, obj.projection.parameters()
    ):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online)


# ------------------------------------------------------------------------ augmentations


def test_context_std_is_the_per_dimension_std_of_every_row_held(buffer):
    rows = np.concatenate(
        [buffer.storage[t, : buffer.size(t), : LAYOUT.width].numpy() for t in range(3)]
    )
    np.testing.assert_allclose(context_std(buffer, True).numpy(), rows.std(0), rtol=1e-5)


def augment(name: str, x: torch.Tensor, seed: int, std: torch.Tensor, **kw) -> torch.Tensor:
    cfg = config(**kw)
    aug = AUGMENTATION_REGISTRY.get(name)(cfg, LAYOUT)
    return aug(x, torch.Generator().manual_seed(seed), std)


@pytest.mark.parametrize("name", ["crop", "noise", "reward-noise", "subsample"])
def test_augmentations_keep_dtype_and_shape_and_are_seeded(name):
    x = torch.randn(6, 10, LAYOUT.width)
    std = torch.rand(LAYOUT.width) + 0.5
    a, b, c = augment(name, x, 0, std), augment(name, x, 0, std), augment(name, x, 1, std)
    rows = 5 if name == "subsample" else 10  # subsample keeps round(0.5 * 10) rows
    assert a.shape == (6, rows, LAYOUT.width) and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert torch.equal(a, c) == (name == "crop")  # crop is drawn by the buffer


def test_noise_moves_only_s_and_s_next_with_sigma_relative_to_the_std():
    x = torch.zeros(2000, 10, LAYOUT.width)
    std = torch.tensor([1.0, 2.0, 5.0, 5.0, 5.0, 3.0, 0.0])  # s (2), a (2), r, s' (2)
    out = augment("noise", x, 0, std, noise_scale=0.1)
    spread = out.flatten(0, 1).std(0)
    on_states = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(spread, 0.1 * std * on_states, rtol=0.02, atol=0.0)  # 20,000 each
    reward = augment("reward-noise", x, 0, std, reward_noise_scale=0.2)
    spread = reward.flatten(0, 1).std(0)
    assert spread[LAYOUT.reward].item() == pytest.approx(1.0, rel=0.02)  # 0.2 x 5
    assert torch.equal(spread[:4], torch.zeros(4)) and torch.equal(spread[5:], torch.zeros(2))


def test_subsample_keeps_rows_in_temporal_order():
    x = torch.arange(3 * 10, dtype=torch.float32).view(3, 10, 1).expand(3, 10, LAYOUT.width)
    out = augment("subsample", x.contiguous(), 4, torch.ones(LAYOUT.width), subsample_fraction=0.3)
    assert out.shape == (3, 3, LAYOUT.width)
    kept = out[..., 0]
    assert (kept.diff(dim=1) > 0).all()  # increasing: in order, no repeats
    for i in range(3):  # each crop's rows come from that crop
        assert ((kept[i] >= 10 * i) & (kept[i] < 10 * (i + 1))).all()


def test_trajectory_without_crop_pairs_one_window_and_crop_pairs_two(buffer):
    same = make_objective("trajectory", parts(config(augment=("noise",))))
    two = make_objective("trajectory", parts(config(augment=("crop",))))
    gen = torch.Generator().manual_seed(3)
    std = context_std(buffer, True)
    q, k, _ = same.draw(buffer, np.array([0, 1, 2]), gen, std)
    a_cols = LAYOUT.actions  # noise leaves the actions: both views show one window's actions
    assert torch.equal(q[..., a_cols], k[..., a_cols]) and not torch.equal(q, k)
    q, k, _ = two.draw(buffer, np.array([0, 1, 2]), torch.Generator().manual_seed(3), std)
    assert not torch.equal(q[..., a_cols], k[..., a_cols])


# ----------------------------------------------------------------------- learner level


def make_agent(seed: int, family, tasks, **kw) -> Pearl:
    cfg = replace(preset(family, "quick"), **TINY, **kw)
    return Pearl(cfg, family, tasks[:6], torch.device("cpu"), seed)


@pytest.mark.parametrize(
    "kw",
    [
        dict(objective="transition", augment=("noise", "reward-noise")),
        dict(objective="masked"),
        dict(objective="predictive-cpc", augment=("crop", "subsample")),
        dict(objective="predictive-spr"),
        dict(objective="reward", augment=("crop", "noise")),
        dict(objective="none", augment=("noise", "subsample"), augment_context=True),
    ],
    ids=lambda kw: kw["objective"],
)
def test_each_objective_resumes_exactly(kw, family, tasks, check_resume):
    def modules(agent):
        return [agent.encoder, agent.key_encoder, agent.objective, agent.policy, agent.qf1]

    a, b = check_resume(lambda seed: make_agent(seed, family, tasks, **kw), modules)
    if kw["objective"] in ("masked", "predictive-cpc", "predictive-spr", "reward"):
        assert "objective" in a.state_dict(), "its own networks are in the checkpoint"


def test_rad_context_augmentation_changes_pearl_and_only_with_the_switch(family, tasks):
    plain = make_agent(0, family, tasks, objective="none", augment=("noise",))
    rad = make_agent(0, family, tasks, objective="none", augment=("noise",), augment_context=True)
    ref = make_agent(0, family, tasks, objective="none", contrastive_weight=0.0)
    m_plain, m_rad, m_ref = plain.train_iteration(), rad.train_iteration(), ref.train_iteration()
    assert m_plain == m_ref  # without the switch, augmentations touch nothing in PEARL
    assert m_rad["qf_loss"] != m_ref["qf_loss"]


# ----------------------------------------------------------------- the command line


def cocoa_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cocoa", *args], capture_output=True, text=True, timeout=600
    )


TINY_RUN = {
    "eval_interval": 1000,
    "algo_config": {
        "net_size": 16,
        "n_layers": 2,
        "encoder_hidden": [16],
        "batch_size": 16,
        "meta_batch": 4,
        "num_initial_steps": 20,
        "num_tasks_sample": 2,
        "num_steps_prior": 20,
        "num_extra_rl_steps_posterior": 20,
        "num_train_steps_per_itr": 10,
        "embedding_batch_size": 8,
        "contrastive_batch": 6,
        "crop_window": 6,
        "transformer_dim": 16,
        "predictor_hidden": 16,
    },
}


# killed and resumed through the CLI as well: the objectives with networks and EMA targets
# of their own (their checkpoint entries and generators must all come back)
RESUMED_FROM_THE_CLI = ("masked", "predictive-spr")


@pytest.mark.parametrize("name", LEARNED)
def test_each_objective_trains_from_the_command_line(name, tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY_RUN))
    common = ["--env", "point-robot", "--config", str(cfg), "--out", str(tmp_path)]
    common += ["--device", "cpu", "--quiet", "--objective", name]
    proc = cocoa_cli("meta-train", *common, "--steps", "1760", "--name", "a")
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "point-robot" / "cocoa" / "a"
    assert json.loads((run / "config.json").read_text())["algo_config"]["objective"] == name
    df = pd.read_csv(run / "progress.csv")
    trained = df["contrastive_loss"].iloc[1:]  # row 0: the untrained agent's meta-test
    assert len(trained) == 2 and trained.notna().all() and (trained > -1.0).all()
    if name not in RESUMED_FROM_THE_CLI:
        return  # exact resume in process: test_each_objective_resumes_exactly, test_pearl.py
    # resumed from its checkpoint with a larger budget, it trains on exactly as a run that
    # went through (the first run's final meta-test is the one extra row entry)
    proc = cocoa_cli("meta-train", "--resume", str(run), "--steps", "1840", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = cocoa_cli("meta-train", *common, "--steps", "1840", "--name", "b")
    assert proc.returncode == 0, proc.stderr
    resumed = pd.read_csv(run / "progress.csv").drop(columns=["wall_time_s"])
    through = pd.read_csv(run.parent / "b" / "progress.csv").drop(columns=["wall_time_s"])
    training = [c for c in through.columns if not c.startswith("meta_test")]
    pd.testing.assert_frame_equal(resumed[training], through[training])
    pd.testing.assert_series_equal(resumed.iloc[-1], through.iloc[-1])


def test_objectives_and_augmentations_commands_list_one_line_each():
    out = cocoa_cli("objectives").stdout.splitlines()
    assert [line.split()[0] for line in out] == [*CONTRASTIVE, "none", "reward"]  # a fresh process
    assert "(default)" in out[0] and "M-CURL" in out[2]
    out = cocoa_cli("augmentations").stdout.splitlines()
    assert [line.split()[0] for line in out] == ["crop", "noise", "reward-noise", "subsample"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--objective", "maskd"], "unknown objective 'maskd'; did you mean masked?"),
        (["--augment", "crop,nois"], "known: crop, noise, reward-noise, subsample"),
        (["--algo", "pearl", "--objective", "masked"], "applies to --algo cocoa"),
    ],
)
def test_bad_choices_are_one_line(args, message):
    proc = cocoa_cli("meta-train", "--env", "point-robot", *args)
    assert proc.returncode != 0
    assert message in proc.stderr and proc.stderr.count("\n") == 1


def test_modules_and_layout_are_what_the_learner_owns(family, tasks):
    agent = make_agent(0, family, tasks, objective="masked")
    assert agent.objective.parts.encoder is agent.encoder
    assert agent.objective.parts.key_encoder is agent.key_encoder
    # the shared modules are not the objective's own parameters (no double optimisation)
    own = {id(p) for p in agent.objective.parameters()}
    assert not own & {id(p) for p in agent.encoder.parameters()}
    transformer = agent.objective.transformer
    assert len(transformer.blocks) == 2 and transformer.pos.requires_grad
    block = transformer.blocks[0]  # one head: one query, key and value projection of width d
    d = agent.cfg.transformer_dim
    assert block.qkv.weight.shape == (3 * d, d) and isinstance(block.norm1, nn.LayerNorm)
