"""Training that does not lose work: a run killed with SIGKILL after a checkpoint resumes to the state of
an uninterrupted run with the same seed (loss history and weights), with batches read in process or by
DataLoader workers that had read ahead of the checkpoint, and the tiny CVAE exercises it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from medsyn.training.checkpoint import load_checkpoint

SETUP = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from medsyn.data.image_set import ImageSet
    from medsyn.models.registry import build_generator

    torch.set_num_threads(1)
    digits = load_digits()
    images = F.interpolate(torch.tensor(digits.images[:120], dtype=torch.float32)[:, None] / 16, size=16)
    train = ImageSet(images.clamp(0, 1), torch.tensor(digits.target[:120]), tuple("0123456789"), "digits")

    def make(steps, dp=None, num_workers=0):
        return build_generator("cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[4, 8], latent_dim=4,
                               steps=steps, batch_size=16, checkpoint_every=10, dp=dp, num_workers=num_workers)
    """
)


def _namespace() -> dict:
    namespace: dict = {}
    exec(SETUP, namespace)
    return namespace


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _assert_same_run(a, b) -> None:
    assert len(a.history) == len(b.history)
    for left, right in zip(a.history, b.history):
        assert left.keys() == right.keys()
        for key in left:
            assert left[key] == pytest.approx(right[key], rel=1e-5, abs=1e-7), key
    for (name, x), (_, y) in zip(a.network.state_dict().items(), b.network.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_run_killed_after_its_first_checkpoint_resumes_to_the_uninterrupted_state(tmp_path, one_thread, num_workers):
    checkpoint = tmp_path / "killed.pt"
    # The child trains 40 steps with a checkpoint every 10, then stalls right after writing its first
    # checkpoint so the parent can SIGKILL it mid-run at a known point.
    script = SETUP + textwrap.dedent(
        f"""
        import time
        import medsyn.training.loop as loop
        original = loop.save_checkpoint
        def save_then_stall(*args, **kwargs):
            path = original(*args, **kwargs)
            time.sleep(120)
            return path
        loop.save_checkpoint = save_then_stall
        make(40, num_workers={num_workers}).fit(train, {str(checkpoint)!r}, seed=3, progress=False)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert child.poll() is None, "training process ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert load_checkpoint(checkpoint)["step"] == 10
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no torn temporary left behind

    namespace = _namespace()
    resumed = namespace["make"](40, num_workers=num_workers)
    resumed.fit(namespace["train"], checkpoint, seed=3, progress=False)
    uninterrupted = namespace["make"](40)
    uninterrupted.fit(namespace["train"], tmp_path / "uninterrupted.pt", seed=3, progress=False)
    _assert_same_run(resumed, uninterrupted)
    assert load_checkpoint(checkpoint)["step"] == 40


@pytest.mark.parametrize(
    "dp, num_workers",
    [(None, 0), ({"noise_multiplier": 0.8, "max_grad_norm": 1.0}, 0), ({"noise_multiplier": 0.8}, 2)],
)
def test_training_in_two_calls_equals_one_call_including_dp_accountant(tmp_path, one_thread, dp, num_workers):
    namespace = _namespace()
    make, train = namespace["make"], namespace["train"]
    make(15, dp, num_workers).fit(train, tmp_path / "two.pt", seed=5, progress=False)
    assert load_checkpoint(tmp_path / "two.pt")["step"] == 15
    two_calls = make(30, dp, num_workers)
    two_calls.fit(train, tmp_path / "two.pt", seed=5, progress=False)
    one_call = make(30, dp)
    one_call.fit(train, tmp_path / "one.pt", seed=5, progress=False)
    _assert_same_run(two_calls, one_call)
    if dp is not None:
        resumed_dp = load_checkpoint(tmp_path / "two.pt")["metadata"]["dp"]
        assert resumed_dp["epsilon"] == pytest.approx(one_call.metadata["dp"]["epsilon"], rel=1e-9)
        assert (
            resumed_dp["epsilon"]
            > load_checkpoint(tmp_path / "one.pt", model="cvae")["metadata"]["dp"]["epsilon"] * 0.99
        )


def test_a_seed_changes_the_run(tmp_path, one_thread):
    namespace = _namespace()
    a, b = namespace["make"](5), namespace["make"](5)
    a.fit(namespace["train"], tmp_path / "a.pt", seed=0, progress=False)
    b.fit(namespace["train"], tmp_path / "b.pt", seed=1, progress=False)
    assert a.history != b.history


def test_checkpoint_beyond_the_requested_steps_is_refused(tmp_path, one_thread):
    namespace = _namespace()
    namespace["make"](12).fit(namespace["train"], tmp_path / "c.pt", seed=0, progress=False)
    with pytest.raises(ValueError, match="beyond the 5 steps"):
        namespace["make"](5).fit(namespace["train"], tmp_path / "c.pt", seed=0, progress=False)
    with pytest.raises(ValueError, match="different cvae config"):
        namespace["make"](20, {"noise_multiplier": 1.0}).fit(
            namespace["train"], Path(tmp_path / "c.pt"), progress=False
        )
