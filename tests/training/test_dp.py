"""DP-SGD helpers: per-sample clipping against a brute-force oracle, noise scale, epsilon, BatchNorm fix."""

import math

import pytest
import torch
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from torch import nn

from medsyn.training.dp import (
    default_delta,
    discriminator_hooks_disabled,
    epsilon,
    make_module_private_compatible,
    make_private,
    per_sample_mean,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.GroupNorm(1, 3), nn.Tanh(), nn.Flatten(), nn.Linear(48, 2)
    )


def _per_sample_loss(model, images, targets):
    return (model(images) - targets).pow(2).sum(1)


def _flat_parameters(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_sigma_zero_step_equals_mean_of_clipped_per_sample_gradients():
    images, targets = torch.randn(5, 1, 4, 4), torch.randn(5, 2)
    max_grad_norm, expected_batch_size = 0.5, 4

    oracle_model = _model()
    clipped_sum = torch.zeros_like(_flat_parameters(oracle_model), dtype=torch.float64)
    for i in range(len(images)):  # one backward per sample: the definition of per-sample clipping
        oracle_model.zero_grad()
        _per_sample_loss(oracle_model, images[i : i + 1], targets[i : i + 1]).sum().backward()
        gradient = torch.cat([p.grad.flatten() for p in oracle_model.parameters()]).double()
        clipped_sum += gradient * min(1.0, max_grad_norm / (gradient.norm().item() + 1e-6))
    expected = _flat_parameters(oracle_model).double() - clipped_sum / expected_batch_size

    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    private, optimizer, accountant = make_private(
        model,
        optimizer,
        noise_multiplier=0.0,
        max_grad_norm=max_grad_norm,
        sample_rate=0.1,
        expected_batch_size=expected_batch_size,
    )
    optimizer.zero_grad()
    per_sample_mean(_per_sample_loss(private, images, targets)).backward()
    optimizer.step()
    torch.testing.assert_close(_flat_parameters(model).double(), expected, rtol=1e-5, atol=1e-6)
    assert epsilon(accountant, 1e-5) == math.inf  # clipping without noise gives no privacy


def test_noise_has_std_sigma_times_clip_over_expected_batch_size():
    torch.manual_seed(1)
    model = nn.Linear(100, 40)
    start = _flat_parameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    private, optimizer, _ = make_private(
        model, optimizer, noise_multiplier=2.0, max_grad_norm=1.0, sample_rate=0.5, expected_batch_size=8
    )
    optimizer.zero_grad()
    # zero loss: the clipped gradient is 0, the update is pure noise
    per_sample_mean(private(torch.randn(8, 100)).sum(1) * 0).backward()
    optimizer.step()
    update = _flat_parameters(model) - start
    assert update.std().item() == pytest.approx(2.0 * 1.0 / 8, rel=0.05)  # 4040 draws


def test_epsilon_matches_rdp_analysis_and_survives_a_state_round_trip():
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    private, optimizer, accountant = make_private(
        model, optimizer, noise_multiplier=1.1, max_grad_norm=1.0, sample_rate=0.05, expected_batch_size=2
    )
    for _ in range(7):
        optimizer.zero_grad()
        per_sample_mean(_per_sample_loss(private, torch.randn(3, 1, 4, 4), torch.randn(3, 2))).backward()
        optimizer.step()
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    expected, _ = get_privacy_spent(
        orders=orders, rdp=compute_rdp(q=0.05, noise_multiplier=1.1, steps=7, orders=orders), delta=1e-4
    )
    assert epsilon(accountant, 1e-4) == pytest.approx(expected, rel=1e-6)

    from opacus.accountants import RDPAccountant

    restored = RDPAccountant()
    restored.load_state_dict(accountant.state_dict())
    assert epsilon(restored, 1e-4) == epsilon(accountant, 1e-4)


def test_epsilon_grows_with_steps_and_shrinks_with_sigma():
    from opacus.accountants import RDPAccountant

    def spent(sigma, steps):
        accountant = RDPAccountant()
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=0.02)
        return epsilon(accountant, 1e-5)

    assert spent(1.0, 100) < spent(1.0, 400)
    assert spent(2.0, 100) < spent(1.0, 100)
    assert epsilon(RDPAccountant(), 1e-5) == 0.0


def test_empty_poisson_batch_still_takes_a_noisy_step():
    model = _model()
    start = _flat_parameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    private, optimizer, accountant = make_private(
        model, optimizer, noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.1, expected_batch_size=4
    )
    optimizer.zero_grad()
    loss = per_sample_mean(_per_sample_loss(private, torch.zeros(0, 1, 4, 4), torch.zeros(0, 2)))
    assert loss.item() == 0.0
    loss.backward()
    optimizer.step()
    assert not torch.equal(_flat_parameters(model), start)
    assert epsilon(accountant, 1e-5) > 0


def test_batchnorm_is_replaced_by_groupnorm_and_reported():
    module = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    fixed, replaced = make_module_private_compatible(module)
    assert replaced
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in fixed.modules())
    assert any(isinstance(layer, nn.GroupNorm) for layer in fixed.modules())
    _, replaced_again = make_module_private_compatible(fixed)
    assert not replaced_again


def test_incompatible_module_and_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="make_module_private_compatible"):
        make_private(
            nn.Sequential(nn.BatchNorm1d(3)),
            torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            sample_rate=0.1,
            expected_batch_size=1,
        )
    model = _model()
    for kwargs, key in [
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"sample_rate": 0.0}, "sample_rate"),
    ]:
        arguments = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "sample_rate": 0.1, **kwargs}
        with pytest.raises(ValueError, match=key):
            make_private(model, torch.optim.SGD(model.parameters(), lr=1), expected_batch_size=2, **arguments)
    with pytest.raises(ValueError, match="delta"):
        epsilon(None, 0.0)
    assert default_delta(500) == 1 / 500
    with pytest.raises(ValueError, match="2 training images"):
        default_delta(1)


def test_generator_step_through_a_private_discriminator_records_no_per_sample_gradients():
    torch.manual_seed(0)
    discriminator, generator = nn.Linear(6, 1), nn.Linear(3, 6)
    private, d_optimizer, _ = make_private(
        discriminator,
        torch.optim.SGD(discriminator.parameters(), lr=0.1),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        sample_rate=0.5,
        expected_batch_size=4,
    )
    with discriminator_hooks_disabled(private):
        private(generator(torch.randn(4, 3))).mean().backward()
    assert all(getattr(p, "grad_sample", None) is None for p in discriminator.parameters())
    assert generator.weight.grad is not None
    d_optimizer.zero_grad()
    per_sample_mean(private(torch.randn(4, 6)).squeeze(1)).backward()  # hooks are back on
    assert discriminator.weight.grad_sample.shape == (4, 1, 6)
