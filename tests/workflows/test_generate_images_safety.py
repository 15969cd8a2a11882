"""generate_images with hostile class names in the checkpoint: folders sanitised, nothing outside out_dir;
a corrupted checkpoint is refused before anything is written; checkpoints honour the umask."""

import os
import re

import numpy as np
import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.models.registry import build_generator
from medsyn.workflows.generate_images import generate_images

NAMES = ("../../evil", "/abs/evil", "ok")


@pytest.fixture
def hostile_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(0)
    train = ImageSet(torch.rand(12, 1, 8, 8, generator=generator), torch.arange(12) % 3, NAMES, "hostile")
    model = build_generator("cvae", num_classes=3, image_shape=(1, 8, 8), hidden_dims=[4], latent_dim=2,
                            steps=1, batch_size=4)
    path = tmp_path / "run" / "checkpoint.pt"
    previous = os.umask(0o077)
    try:
        model.fit(train, path, seed=0, progress=False)
    finally:
        os.umask(previous)
    return path


def _visible_tree(root):
    paths = (p.relative_to(root) for p in root.rglob("*"))
    return sorted(str(p) for p in paths if not any(part.startswith(".") for part in p.parts))


def test_checkpoint_file_mode_follows_the_umask(hostile_checkpoint):
    assert hostile_checkpoint.stat().st_mode & 0o777 == 0o600


def test_class_names_from_a_checkpoint_stay_inside_out_dir(tmp_path, hostile_checkpoint):
    out = generate_images(tmp_path / "run", per_class=1, out_dir=tmp_path / "a" / "b" / "out")
    assert _visible_tree(tmp_path / "a") == [
        "b", "b/out", "b/out/_._.._evil", "b/out/_._.._evil/00000.png", "b/out/_abs_evil",
        "b/out/_abs_evil/00000.png", "b/out/ok", "b/out/ok/00000.png", "b/out/synthetic.npz",
    ]
    assert not (tmp_path / "evil").exists() and not os.path.exists("/abs/evil")
    assert tuple(np.load(out / "synthetic.npz")["class_names"]) == NAMES  # the real names are kept


def test_corrupted_checkpoint_is_refused_before_writing(tmp_path, hostile_checkpoint):
    raw = bytearray(hostile_checkpoint.read_bytes())
    middle = len(raw) // 2
    raw[middle - 200:middle + 200] = bytes(255 - b for b in raw[middle - 200:middle + 200])
    hostile_checkpoint.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(hostile_checkpoint))} is corrupted: checksum"):
        generate_images(tmp_path / "run", per_class=1, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or _visible_tree(tmp_path / "out") == []
