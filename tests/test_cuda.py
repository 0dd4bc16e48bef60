"""The learners on a CUDA device: the same update as on the CPU, exact resume, and checkpoints
that move between devices. Skipped where torch sees no GPU.

The CPU and CUDA generators draw different streams, so to compare one update on both
devices, the CUDA learner's draws are taken from a CPU generator holding the CPU learner's
state and then moved to the GPU (``host_draws``): both updates then see the same batch, the
same z and the same policy noise, and differ only by floating-point rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from cocoa.baselines import oracle_sac as S
from cocoa.envs import get_family
from cocoa.np_nets import posterior
from cocoa.pearl import Pearl, preset
from cocoa.task_samplers import get_sampler

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")

TINY = dict(
    net_size=32,
    n_layers=2,
    encoder_hidden=(32,),
    batch_size=16,
    meta_batch=4,
    embedding_batch_size=12,
    num_initial_steps=40,
    num_tasks_sample=2,
    num_steps_prior=40,
    num_extra_rl_steps_posterior=40,
    num_train_steps_per_itr=5,
    contrastive_batch=6,
    crop_window=5,
)

VARIANTS = {
    "pearl": dict(contrastive=False),
    "cocoa": dict(contrastive=True),
    "cocoa-attention": dict(contrastive=True, encoder_attention_layers=1),
    "cocoa-masked": dict(contrastive=True, objective="masked"),
    "pearl-recurrent": dict(contrastive=False, encoder_recurrent=True),
}


def make_pearl(variant: str, device: torch.device, seed: int) -> Pearl:
    family = get_family("point-robot")
    kw = dict(VARIANTS[variant])
    cfg = dataclasses.replace(preset(family, "quick", contrastive=kw.pop("contrastive")), **TINY)
    cfg = dataclasses.replace(cfg, **kw)
    tasks = get_sampler("point-robot").train_tasks()[:6]
    return Pearl(cfg, family, tasks, device, seed)


def make_oracle(device: torch.device, seed: int) -> S.OracleSac:
    family = get_family("point-robot")
    cfg = dataclasses.replace(
        S.preset(family, "quick"), hidden=(32, 32), batch_size=16, meta_batch=3,
        initial_steps=40, num_tasks_sample=2, steps_per_task=40, num_train_steps=5,
    )  # fmt: skip
    return S.OracleSac(cfg, family, get_sampler("point-robot").train_tasks()[:6], device, seed)


@contextlib.contextmanager
def host_draws(companions: dict[int, torch.Generator]) -> Iterator[None]:
    """Random draws made with a generator in ``companions`` (keyed by ``id``) come from its
    CPU companion instead, and are then moved to the device asked for."""
    originals = {name: getattr(torch, name) for name in ("rand", "randn", "randint", "randperm")}

    def wrap(draw):
        def on_host(*args, generator=None, device=None, **kw):
            host = companions.get(id(generator))
            if host is None:
                return draw(*args, generator=generator, device=device, **kw)
            return draw(*args, generator=host, device="cpu", **kw).to(device)

        return on_host

    try:
        for name, draw in originals.items():
            setattr(torch, name, wrap(draw))
        yield
    finally:
        for name, draw in originals.items():
            setattr(torch, name, draw)


def assert_modules_close(a: dict, b: dict, atol: float, moved: float = 0.0) -> None:
    """Every floating tensor of two ``{name: module}`` maps agrees to ``atol``, except that a
    fraction of at most 1e-3 of the weights may differ by up to ``moved``."""
    for name in a:
        sa, sb = a[name].state_dict(), b[name].state_dict()
        for key, va in sa.items():
            if isinstance(va, torch.Tensor) and va.is_floating_point():
                diff = (va.cpu() - sb[key].cpu()).abs()
                assert float((diff > atol).float().mean()) <= (1e-3 if moved else 0), (
                    f"{name}.{key}"
                )
                assert diff.numel() == 0 or float(diff.max()) <= max(atol, moved), f"{name}.{key}"


def same_update_on_both_devices(make, modules, round_trip, max_lr, n_steps=3, tasks=(0, 1, 2)):
    """Trains ``make(CPU, 3)`` for an iteration, loads its checkpoint into ``make(CUDA, 99)``
    and takes ``n_steps`` updates on both with the same draws; returns both metric lists."""
    cpu = make(CPU, 3)
    cpu.train_iteration()
    gpu = make(CUDA, 99)
    gpu.load_state_dict(round_trip(cpu.state_dict()))
    assert_modules_close(modules(cpu), modules(gpu), atol=0)  # the load is exact
    companion = torch.Generator().manual_seed(0)
    companion.set_state(cpu.gen.get_state())
    metrics_cpu, metrics_gpu = [], []
    with host_draws({id(gpu.gen): companion}):
        for _ in range(n_steps):
            metrics_cpu.append({k: float(v) for k, v in cpu.update(np.array(tasks)).items()})
            metrics_gpu.append({k: float(v) for k, v in gpu.update(np.array(tasks)).items()})
    torch.cuda.synchronize()
    for mc, mg in zip(metrics_cpu, metrics_gpu):
        assert mc.keys() == mg.keys()
        for k in mc:  # an accuracy counts hits: a near tie may round the other way
            assert mg[k] == pytest.approx(mc[k], rel=1e-3, abs=0.2 if "accuracy" in k else 1e-5), k
    # Adam moves each weight by about lr whatever its gradient's size, so the rare gradient
    # near 0 that rounds to the other sign moves a weight by up to 2 lr a step
    assert_modules_close(modules(cpu), modules(gpu), atol=1e-5, moved=2 * n_steps * max_lr)
    return cpu, gpu


def pearl_modules(agent: Pearl) -> dict:
    return {k: m for k, m in agent._modules().items() if isinstance(m, torch.nn.Module)}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pearl_update_on_cuda_is_the_cpu_update(variant, checkpoint_round_trip, monkeypatch):
    # cuDNN may run the recurrent encoder's LSTM in TF32, whose rounding is far coarser than
    # the float32 this test compares at
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    make = lambda device, seed: make_pearl(variant, device, seed)  # noqa: E731
    cfg = make(CPU, 0).cfg
    max_lr = max(cfg.policy_lr, cfg.qf_lr, cfg.vf_lr, cfg.context_lr)
    same_update_on_both_devices(make, pearl_modules, checkpoint_round_trip, max_lr)


def test_oracle_sac_update_on_cuda_is_the_cpu_update(checkpoint_round_trip):
    same_update_on_both_devices(
        make_oracle,
        lambda agent: {"policy": agent.policy, "q": agent.q, "q_target": agent.q_target},
        checkpoint_round_trip,
        max_lr=make_oracle(CPU, 0).cfg.lr,
    )


@pytest.mark.parametrize("variant", ["pearl", "cocoa-attention"])
def test_training_on_cuda_resumes_exactly(variant, check_resume):
    """A CUDA learner loaded from another's checkpoint repeats its next iteration exactly."""
    check_resume(
        lambda seed: make_pearl(variant, CUDA, seed),
        lambda agent: list(pearl_modules(agent).values()),
    )


def test_a_cuda_checkpoint_infers_the_same_posterior_on_the_cpu(checkpoint_round_trip):
    """Weights trained on the GPU give the same posterior on the CPU, in torch and in the numpy
    twin that collection uses, and the same policy mean."""
    gpu = make_pearl("cocoa-attention", CUDA, 0)
    gpu.train_iteration()
    cpu = make_pearl("cocoa-attention", CPU, 1)
    cpu.load_state_dict(checkpoint_round_trip(gpu.state_dict()))
    context = np.random.default_rng(0).normal(size=(1, 30, gpu.context_dim)).astype(np.float32)
    with torch.no_grad():
        mu_g, var_g = gpu.encoder(torch.as_tensor(context, device=CUDA))
        mu_c, var_c = cpu.encoder(torch.as_tensor(context))
    np.testing.assert_allclose(mu_g.cpu().numpy(), mu_c.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(var_g.cpu().numpy(), var_c.numpy(), rtol=1e-4, atol=1e-9)
    np_mu, np_var = posterior(gpu.encoder.numpy_params(), context[0], gpu.cfg.latent_dim)
    np.testing.assert_allclose(np_mu, mu_c[0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np_var, var_c[0].numpy(), rtol=1e-4, atol=1e-9)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(7, 2 + gpu.cfg.latent_dim)))
    with torch.no_grad():
        mean_g = gpu.policy(x.float().to(CUDA), deterministic=True).action.cpu()
        mean_c = cpu.policy(x.float(), deterministic=True).action
    np.testing.assert_allclose(mean_g.numpy(), mean_c.numpy(), rtol=1e-4, atol=1e-6)


def test_meta_train_on_cuda_and_meta_test_on_a_machine_without_one(tmp_path):
    """``cocoa meta-train --device cuda`` runs and records its device; ``cocoa meta-test`` of
    that run where no GPU is visible evaluates on the CPU."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"eval_interval": 2000, "algo_config": TINY}))
    args = ["meta-train", "--env", "point-robot", "--algo", "cocoa", "--steps", "4000"]
    args += ["--config", str(config), "--out", str(tmp_path), "--name", "g", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "cocoa", *args, "--device", "cuda"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "point-robot" / "cocoa" / "g"
    assert json.loads((run_dir / "config.json").read_text())["device"] == "cuda"
    no_gpu = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "cocoa", "meta-test", str(run_dir), "--json"],
        capture_output=True, text=True, timeout=600, env=no_gpu,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["tasks"]) == 20 and np.isfinite(data["meta_test/return"])
