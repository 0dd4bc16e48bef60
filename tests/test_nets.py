"""Network initialisation as PEARL's code (rlkit) does it."""

import numpy as np
import pytest
import torch

from cocoa.context import ContextEncoder
from cocoa.nets import TanhGaussianPolicy, mlp


def test_mlp_initialisation_is_rlkits():
    torch.manual_seed(0)
    net = mlp(7, 1, [300, 300])
    first, hidden, last = net[0], net[2], net[4]
    for layer in (first, hidden):
        bound = 1 / np.sqrt(layer.weight.shape[0])  # rlkit's fanin_init reads size(0)
        w = layer.weight.detach()
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.95 * bound  # uniform over the whole range
        torch.testing.assert_close(layer.bias.detach(), torch.full_like(layer.bias, 0.1))
    assert last.weight.abs().max() <= 3e-3 and last.bias.abs().max() <= 3e-3
    # torch's default where asked (MAML's policy): the first layer's bound is 1/√in
    default = mlp(7, 1, [300], hidden_init="torch", out_init_scale=None)
    assert default[0].weight.abs().max() > 1 / np.sqrt(300)
    with pytest.raises(ValueError, match="hidden_init"):
        mlp(2, 1, [4], hidden_init="xavier")


def test_policy_heads_and_encoder_initialisation():
    policy = TanhGaussianPolicy(7, 2, [64, 64])
    head = policy.trunk[-1]  # mean and log-std heads in one layer
    assert head.weight.abs().max() <= 1e-3 and head.bias.abs().max() <= 1e-3
    encoder = ContextEncoder(5, 5, [64, 64])
    assert encoder.net[-1].weight.abs().max() <= 3e-3
    # the untrained policy acts near zero with std near 1
    sample = policy(torch.zeros(3, 7), deterministic=True)
    assert sample.action.abs().max() < 0.05
    assert sample.log_std.abs().max() < 0.05
