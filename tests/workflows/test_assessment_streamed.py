"""The assessment on stored images (data.options.store, a folder set with store: true, a generator whose
samples go to a store) gives every number the in-memory path gives: the stages stream the same pixels in
batches (issue: paper scale)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medsyn.workflows.assessment import run_assessment

pytestmark = [pytest.mark.filterwarnings("ignore:.*nvImageCodec.*")]

_CLASSES = ("polyp", "normal", "ulcer")
_FAST = {
    "utility": {"classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 16}, "multipliers": [1, 2]},
    "robustness": {"steps": 3},
    "privacy": {"q": 8, "repeats": 2, "gallery_top": 4, "empirical_epsilon": {"enabled": False}},
    "speed": {"count": 4, "repeats": 1},
    "fidelity": {"extractors": [], "domain": True, "kid": {"subsets": 3, "subset_size": 10}},
}


def _image_folders(root):
    """A real class-per-folder set (20 grey 16x16 PNGs a class) and a synthetic folder of noisy copies
    (2 per real image) with its labels CSV."""
    rng = np.random.default_rng(0)
    real, synthetic = root / "real", root / "synthetic"
    synthetic.mkdir(parents=True)
    rows = ["filename,label"]
    for label, name in enumerate(_CLASSES):
        (real / name).mkdir(parents=True)
        for index in range(20):
            base = np.clip(rng.normal(0.3 + 0.2 * label, 0.15, (16, 16)), 0, 1)
            Image.fromarray((base * 255).round().astype(np.uint8)).save(real / name / f"{index:03d}.png")
            for copy in range(2):
                noisy = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
                file = f"{name}_{index}_{copy}.png"
                Image.fromarray((noisy * 255).round().astype(np.uint8)).save(synthetic / file)
                rows.append(f"{file},{name}")
    (synthetic / "labels.csv").write_text("\n".join(rows) + "\n")
    return real, synthetic


def test_stored_and_in_memory_assessments_give_the_same_numbers(tmp_path):
    real, synthetic = _image_folders(tmp_path)
    documents = {}
    for mode, store in (("memory", {}), ("stored", {"store": True, "cache_dir": str(tmp_path / "cache")})):
        data = {"kind": "image_folder", "options": {"path": str(real), "channels": 1, **store}}
        theirs = {"kind": "folder", "path": str(synthetic), "labels_csv": str(synthetic / "labels.csv"), **store}
        cvae = {"kind": "generator", "model": "cvae", "config": {"hidden_dims": [8, 16], "steps": 3}}
        run_assessment(str(tmp_path / mode), data=data, seeds=[0], synthetic_sets={"theirs": theirs, "cvae": cvae},
                       progress=False, **_FAST)
        documents[mode] = json.loads((tmp_path / mode / "results.json").read_text())
    memory, stored = documents["memory"]["synthetic_sets"], documents["stored"]["synthetic_sets"]
    for entry in (*memory.values(), *stored.values()):  # timings differ run to run
        entry.pop("sampling_speed", None)
        for tree in entry.get("per_seed", []):
            tree.pop("sampling_speed", None)
    assert memory == stored
    assert (tmp_path / "stored" / "models" / "cvae" / "seed0" / "stores").is_dir()  # samples went to a store
    assert memory["theirs"]["privacy"]["dcr_ks"]["pixel"]["mean"] > 0.5  # the copies are found in both
    stages = documents["stored"]["metadata"]["costs"]["stages"]
    assert {"real data (read, split)", "utility: classifier training", "privacy: SSIM-max"} <= set(stages)
    counted = {"features": "images", "utility: classifier training": "image passes",
               "robustness: DeepFool": "images", "fidelity": "images", "privacy: SSIM-max": "image pairs",
               "privacy: DCR": "distance pairs"}
    assert {name: stages[name].get("unit") for name in counted} == counted
    # the full SSIM-max scan: every synthetic image x the training split; the folder set holds 120 images
    # (2 per real one), the CVAE samples the largest multiplier (2x) of the training split
    train_size = documents["stored"]["metadata"]["data"]["split_sizes"]["train"]
    assert stages["privacy: SSIM-max"]["items"] == (120 + 2 * train_size) * train_size
