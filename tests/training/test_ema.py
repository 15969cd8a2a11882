"""Exponential moving average: the update rule against a hand computation, and its checkpoint state."""

import pytest
import torch

from medsyn.training.ema import ExponentialMovingAverage


def test_ema_follows_the_update_rule_and_copies_buffers():
    module = torch.nn.BatchNorm1d(3)
    ema = ExponentialMovingAverage(module, decay=0.9)
    start = module.weight.detach().clone()
    with torch.no_grad():
        module.weight.add_(1.0)
        module.running_mean.fill_(5.0)
    ema.update(module)
    torch.testing.assert_close(ema.module.weight, 0.9 * start + 0.1 * (start + 1.0))
    torch.testing.assert_close(ema.module.running_mean, torch.full((3,), 5.0))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip_and_refusals():
    ema = ExponentialMovingAverage(torch.nn.Linear(2, 2), decay=0.5)
    other = ExponentialMovingAverage(torch.nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    torch.testing.assert_close(other.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="decay"):
        ExponentialMovingAverage(torch.nn.Linear(2, 2), decay=0.9).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="decay"):
        ExponentialMovingAverage(torch.nn.Linear(2, 2), decay=1.0)
