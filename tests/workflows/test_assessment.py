"""The assessment bundle end to end (tiny config) and the scoring of an external folder of PNGs + labels CSV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsyn.data.sources import prepare_splits
from medsyn.workflows.assessment import run_assessment

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "medsyn_assessment" / "configs"
REGIME_KEYS = {
    "baseline_real": ["0x", "1x", "2x", "3x"], "geometric_da": ["0x", "1x", "2x", "3x"],
    "data_anonymization": ["1x", "2x", "3x"], "synthetic_da": ["1x", "2x", "3x"], "combined_da": ["1x", "2x", "3x"],
}


def _is_ci(entry, n_seeds):
    low, high = entry["ci90"]
    return entry["n_seeds"] == n_seeds and low <= entry["mean"] <= high


def test_tiny_bundle_writes_every_result_with_ci_over_three_seeds(tmp_path):
    command = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", f"['{CONFIGS / 'assess.yaml'}','{CONFIGS / 'tiny.yaml'}']",
        "--meta_file", str(CONFIGS / "metadata.json"),
        "--output_dir", str(tmp_path),
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metadata"]["seeds"] == [0, 1, 2]
    cvae = results["synthetic_sets"]["cvae"]
    for regime, keys in REGIME_KEYS.items():
        for key in keys:
            assert _is_ci(cvae["utility"][regime][key]["accuracy"], 3)
            assert _is_ci(cvae["utility"][regime][key]["macro_f1"], 3)
            assert _is_ci(cvae["robustness"][regime][key]["adversarial_accuracy"], 3)
    for section in ("utility", "robustness"):
        for regime in ("baseline_real", "geometric_da"):
            entries = cvae[section][regime]
            assert entries["1x"] == entries["2x"] == entries["3x"] == entries["0x"]  # one classifier, no synthetic
    privacy = cvae["privacy"]
    for name in ("ssim_max_paper", "ssim_max_full", "empirical_epsilon_worst_paper_code",
                 "empirical_epsilon_mean_paper_code", "empirical_epsilon_worst_with_d", "empirical_epsilon_mean_with_d"):
        assert _is_ci(privacy[name], 3)
    for name in ("dcr_ks", "dcr_area"):
        assert set(privacy[name]) == {"pixel", "effnet_lite0"}
        assert all(_is_ci(entry, 3) for entry in privacy[name].values())
    assert 0.0 <= privacy["dcr_ks"]["pixel"]["mean"] <= 1.0
    assert set(cvae["fidelity"]) == {"effnet_lite0", "domain_baseline_real", "inception_score", "true_pairs",
                                     "unpaired_set"}
    assert _is_ci(cvae["sampling_speed"], 3) and cvae["sampling_speed"]["mean"] > 0
    inception = cvae["fidelity"].pop("inception_score")["domain_baseline_real"]
    assert _is_ci(inception, 3) and 1.0 <= inception["mean"] <= 10.0  # between 1 and the class count
    for group in ("true_pairs", "unpaired_set"):  # the CVAE reconstructs; no vgg16_weights: no LPIPS
        scores = cvae["fidelity"].pop(group)
        assert set(scores) == {"psnr", "ssim"} and all(_is_ci(entry, 3) for entry in scores.values())
    for scores in cvae["fidelity"].values():
        assert set(scores) == {"precision", "recall", "density", "coverage", "fid", "kid"}
        assert all(_is_ci(entry, 3) for entry in scores.values())
    # the spread over seeds is real: generators and classifiers differ between seeds
    assert len({run["privacy"]["ssim_max_full"] for run in cvae["per_seed"]}) == 3
    assert "psnr_ssim_true_pairs" not in cvae["not_computed"] and "vgg16_weights" in cvae["not_computed"]["lpips"]
    assert results["metadata"]["versions"]["torch"]
    for figure in ("radar.png", "utility_bars.png", "robustness_bars.png", "cvae/dcr_ecdf_pixel.png",
                   "cvae/dcr_ecdf_effnet_lite0.png", "cvae/isomap_query.png", "cvae/privacy_gallery.png"):
        assert (tmp_path / "figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
    report = (tmp_path / "report.md").read_text()
    assert "Table C" in report and "| Synthetic DA | cvae |" in report and "IS [domain_baseline_real]" in report
    assert "Sampling speed (samples/s)" in report
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and 'src="figures' not in page
    assert "cvae,privacy.dcr_ks.pixel," in (tmp_path / "results.csv").read_text()


def _write_folder(folder: Path, train, multiplier: int, *, drop_last: bool = False) -> Path:
    """Real training images of each class, each repeated ``multiplier`` times and slightly noised, as PNGs."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,label"]
    for copy in range(multiplier):
        for index in range(len(train)):
            pixels = train.images[index, 0].numpy() + rng.normal(0, 0.05, train.images.shape[2:])
            name = f"img_{copy}_{index}.png"
            Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)).save(folder / name)
            label = train.class_names[int(train.labels[index])]
            rows.append(f"{name},{label if index % 2 else int(train.labels[index])}")
    if drop_last:
        rows = rows[:-1]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


_DATA = {"kind": "digits", "options": {"size": 16}, "per_class": 2, "val_per_class": 3, "test_per_class": 3}
_FAST = {
    "utility": {"classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 32}, "multipliers": [1, 2, 3]},
    "robustness": {"steps": 5},
    "privacy": {"q": 10, "repeats": 2, "gallery_top": 4},
    "fidelity": {"extractors": [], "domain": True, "kid": {"subsets": 3, "subset_size": 20}},
}


def test_external_folder_is_scored_without_training_a_generator(tmp_path):
    train = prepare_splits("digits", {"size": 16}, seed=0, per_class=2)["train"]
    folder = _write_folder(tmp_path / "theirs", train, 3)
    run_assessment(str(tmp_path / "out"), data=_DATA, seeds=[0, 1],
                   synthetic_sets={"theirs": {"kind": "folder", "path": str(folder),
                                              "labels_csv": str(folder / "labels.csv")}},
                   progress=False, **_FAST)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    theirs = results["synthetic_sets"]["theirs"]
    assert theirs["kind"] == "folder" and not (tmp_path / "out" / "models").exists()
    assert _is_ci(theirs["utility"]["combined_da"]["3x"]["accuracy"], 2)
    assert not any(name.startswith("empirical_epsilon") for name in theirs["privacy"])
    assert "empirical_epsilon" in theirs["not_computed"]
    # the folder holds noisy copies of the training members: far closer to them than held-out real images are
    assert theirs["privacy"]["dcr_ks"]["pixel"]["mean"] > 0.9
    assert set(theirs["fidelity"]) == {"domain_baseline_real", "inception_score", "unpaired_set"}  # no true pairs
    assert "sampling_speed" not in theirs  # images made elsewhere: no generator to time
    assert (tmp_path / "out" / "report.html").is_file()


def test_bad_folder_fails_before_any_training(tmp_path, monkeypatch):
    import medsyn.evaluation.protocol as utility_module

    def no_training(*args, **kwargs):
        raise AssertionError("a classifier was trained before the input checks")

    monkeypatch.setattr(utility_module, "run_utility", no_training)
    train = prepare_splits("digits", {"size": 16}, seed=0, per_class=2)["train"]
    folder = _write_folder(tmp_path / "short", train, 3, drop_last=True)
    spec = {"short": {"kind": "folder", "path": str(folder), "labels_csv": str(folder / "labels.csv")}}
    with pytest.raises(ValueError, match=r"too few images for the 3x regimes: it needs 60 images"):
        run_assessment(str(tmp_path / "out"), data=_DATA, seeds=[0], synthetic_sets=spec, progress=False, **_FAST)
    (folder / "labels.csv").write_text("filename,label\nimg_0_0.png,eleven\n")
    with pytest.raises(ValueError, match="'eleven' is unknown"):
        run_assessment(str(tmp_path / "out"), data=_DATA, seeds=[0], synthetic_sets=spec, progress=False, **_FAST)
    weights = tmp_path / "wrong.pt"
    import torch

    torch.save({"conv.weight": torch.zeros(1)}, weights)
    with pytest.raises(ValueError, match="inception_v3_weights"):
        run_assessment(str(tmp_path / "out"), data=_DATA, seeds=[0],
                       synthetic_sets={"cvae": {"kind": "generator", "model": "cvae",
                                                "config": {"hidden_dims": [8, 16], "steps": 1}}},
                       progress=False, **{**_FAST, "fidelity": {"inception_v3_weights": str(weights)}})


def test_psnr_ssim_use_true_reconstruction_pairs():
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from medsyn.data.image_set import ImageSet
    from medsyn.evaluation.fidelity_suite import true_pair_scores as _true_pair_scores

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 12, 12, generator=generator)
    test = ImageSet(images, torch.tensor([0, 1, 0, 1]), ("a", "b"))
    noise = 0.05 * torch.randn(4, 1, 12, 12, generator=generator)

    class Reconstructs:
        def reconstruct(self, batch, labels):
            assert torch.equal(labels, test.labels)
            return (batch + noise).clamp(0, 1)

    scores = _true_pair_scores(Reconstructs(), test)
    recon = (images + noise).clamp(0, 1).numpy()
    expected_psnr = np.mean([peak_signal_noise_ratio(images[i].numpy(), recon[i], data_range=1.0) for i in range(4)])
    expected_ssim = np.mean([structural_similarity(images[i, 0].numpy(), recon[i, 0], data_range=1.0)
                             for i in range(4)])
    assert scores["psnr"] == pytest.approx(expected_psnr, rel=1e-9)
    assert scores["ssim"] == pytest.approx(expected_ssim, rel=1e-6)
    assert _true_pair_scores(object(), test) is None  # no reconstruct: skipped, never unpaired samples


def test_checkpoint_set_is_sampled_per_seed_and_shape_mismatch_is_refused(tmp_path):
    from medsyn.models.registry import build_generator

    train = prepare_splits("digits", {"size": 16}, seed=0, per_class=2)["train"]
    generator = build_generator("cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[8, 16], latent_dim=8,
                                steps=2, batch_size=8)
    checkpoint = generator.fit(train, tmp_path / "cvae.pt", seed=0, progress=False)
    run_assessment(str(tmp_path / "out"), data=_DATA, seeds=[0, 1], progress=False,
                   synthetic_sets={"ckpt": {"kind": "checkpoint", "path": str(checkpoint)}},
                   **{**_FAST, "privacy": {**_FAST["privacy"], "empirical_epsilon": {"enabled": False}}})
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    per_seed = results["synthetic_sets"]["ckpt"]["per_seed"]
    assert per_seed[0]["privacy"]["ssim_max_full"] != per_seed[1]["privacy"]["ssim_max_full"]
    with pytest.raises(ValueError, match=r"makes 10 classes of \(C,H,W\)=\(1, 16, 16\).*\(1, 32, 32\)"):
        run_assessment(str(tmp_path / "out2"), data={**_DATA, "options": {"size": 32}}, seeds=[0], progress=False,
                       synthetic_sets={"ckpt": {"kind": "checkpoint", "path": str(checkpoint)}}, **_FAST)
