"""run_training on a hand-made problem: intermediate checkpoints, metadata_fn, Poisson batches (empty ones
included), resume of every stateful object, and refusal of a checkpoint made with another config."""

import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.training import loop
from medsyn.training.checkpoint import load_checkpoint
from medsyn.training.loop import TrainingRun, run_training


def _data(n=20) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    return ImageSet(torch.rand(n, 1, 2, 2, generator=generator), torch.arange(n) % 2, ("a", "b"))


def _linear_problem(tmp_path, **run_overrides):
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = {"metadata": 0}

    def step(images, labels, step_index):
        optimizer.zero_grad()
        loss = (model(images.flatten(1)).squeeze(1) - labels.float()).pow(2).sum() / max(len(labels), 1)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "batch": float(len(labels))}

    def metadata_fn():
        calls["metadata"] += 1
        return {"calls": calls["metadata"]}

    arguments = {
        "model_name": "linear",
        "config": {"lr": 0.1},
        "stateful": {"model": model, "optimizer": optimizer},
        "checkpoint_path": tmp_path / "run.pt",
        "steps": 10,
        "batch_size": 4,
        "seed": 0,
        "progress": False,
        "metadata_fn": metadata_fn,
    }
    arguments.update(run_overrides)
    return TrainingRun(**arguments), step, model, calls


def test_checkpoints_every_k_steps_and_at_the_end(tmp_path, monkeypatch):
    saved_steps = []
    original = loop.save_checkpoint

    def recording(path, **kwargs):
        saved_steps.append(kwargs["state"]["step"])
        return original(path, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", recording)
    run, step, _, calls = _linear_problem(tmp_path, checkpoint_every=3)
    history = run_training(run, _data(), step)
    assert saved_steps == [3, 6, 9, 10]
    assert calls["metadata"] == 4
    payload = load_checkpoint(tmp_path / "run.pt", model="linear", config={"lr": 0.1})
    assert payload["metadata"] == {"calls": 4} and payload["history"] == history and len(history) == 10
    assert all(entry["batch"] == 4 for entry in history)


def test_poisson_batches_vary_in_size_and_may_be_empty(tmp_path):
    run, step, _, _ = _linear_problem(tmp_path, poisson_sampling=True, batch_size=1, steps=60)
    sizes = [entry["batch"] for entry in run_training(run, _data(), step)]  # rate 1/20 over 20 items
    assert 0.0 in sizes and max(sizes) >= 2
    assert load_checkpoint(tmp_path / "run.pt")["batches"]["kind"] == "poisson"


def test_resume_restores_model_optimizer_history_and_rng(tmp_path):
    run, step, _, _ = _linear_problem(tmp_path, steps=4)
    run_training(run, _data(), step)
    resumed_run, resumed_step, resumed_model, _ = _linear_problem(tmp_path, steps=10)
    history = run_training(resumed_run, _data(), resumed_step)
    straight_run, straight_step, straight_model, _ = _linear_problem(tmp_path / "straight", steps=10)
    assert history == run_training(straight_run, _data(), straight_step)
    torch.testing.assert_close(resumed_model.weight, straight_model.weight, rtol=0, atol=0)


def test_checkpoint_of_another_config_or_missing_state_is_refused(tmp_path):
    run, step, _, _ = _linear_problem(tmp_path, steps=2)
    run_training(run, _data(), step)
    other, other_step, _, _ = _linear_problem(tmp_path, steps=4, config={"lr": 0.2})
    with pytest.raises(ValueError, match=r"differing keys: \['lr'\]"):
        run_training(other, _data(), other_step)
    extra, extra_step, _, _ = _linear_problem(tmp_path, steps=4)
    extra.stateful = {**extra.stateful, "ema": torch.nn.Linear(1, 1)}
    with pytest.raises(ValueError, match=r"no state for \['ema'\]"):
        run_training(extra, _data(), extra_step)


def test_bad_runs_are_rejected(tmp_path):
    run, step, _, _ = _linear_problem(tmp_path, steps=-1)
    with pytest.raises(ValueError, match="steps"):
        run_training(run, _data(), step)
    run, step, _, _ = _linear_problem(tmp_path, checkpoint_every=-2)
    with pytest.raises(ValueError, match="checkpoint_every"):
        run_training(run, _data(), step)
