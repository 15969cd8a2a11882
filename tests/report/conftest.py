"""Small hand-built schema-2 results documents (medsyn.report.results): an assessment with every section,
a quickstart with sections missing, and a DP sweep with a null dp_epsilon at sigma 0."""

from __future__ import annotations

import copy

import pytest


def stat(mean: float, half: float = 0.01, n: int = 3) -> dict:
    return {"mean": mean, "ci90": [mean - half, mean + half], "n_seeds": n}


def _regimes(per_regime: dict[str, list[float]], metric: str, multipliers: list[str]) -> dict:
    """regime -> multiplier -> {metric: S}; a baseline's one value at 0x and repeated under every multiplier."""
    tree = {}
    for regime, values in per_regime.items():
        if regime in ("baseline_real", "geometric_da"):
            tree[regime] = {key: {metric: stat(values[0])} for key in ["0x", *multipliers]}
        else:
            tree[regime] = {key: {metric: stat(value)} for key, value in zip(multipliers, values)}
    return tree


def _utility(per_regime: dict[str, list[float]], multipliers: list[str]) -> dict:
    tree = _regimes(per_regime, "accuracy", multipliers)
    for entries in tree.values():
        for entry in entries.values():
            entry["macro_f1"] = stat(entry["accuracy"]["mean"] - 0.1)
    return tree


def _assessment_set(kind: str, shift: float, precision: float, ssim: float, robust: float,
                    speed: float | None) -> dict:
    utility = {"baseline_real": [0.95], "geometric_da": [0.9],
               "data_anonymization": [0.6 + shift, 0.7 + shift], "synthetic_da": [0.8 + shift, 0.9 + shift],
               "combined_da": [0.5 + shift, 0.6 + shift]}
    robustness = {"baseline_real": [0.05], "geometric_da": [0.04], "data_anonymization": [robust, robust],
                  "synthetic_da": [robust, robust], "combined_da": [robust, robust]}
    entry = {
        "kind": kind,
        "utility": _utility(utility, ["1x", "2x"]),
        "robustness": _regimes(robustness, "adversarial_accuracy", ["1x", "2x"]),
        "fidelity": {
            "effnet_lite0": {"precision": stat(precision), "recall": stat(0.5), "density": stat(0.7),
                             "coverage": stat(0.4), "fid": stat(50.0, 2.0), "kid": stat(0.012, 0.001)},
            "inception_v3": {"precision": stat(precision / 2), "fid": stat(80.0, 3.0)},
            "inception_score": {"domain_baseline_real": stat(1.8, 0.1)},
        },
        "privacy": {"ssim_max_paper": stat(ssim), "ssim_max_full": stat(ssim + 0.02),
                    "dcr_ks": {"pixel": stat(0.3), "effnet_lite0": stat(0.2)},
                    "dcr_area": {"pixel": stat(0.1), "effnet_lite0": stat(0.05)}},
        "not_computed": {},
        "per_seed": [{"seed": seed, "privacy": {"ssim_max_paper": ssim}} for seed in (0, 1, 2)],
    }
    if kind == "folder":
        entry["not_computed"] = {"empirical_epsilon": "not computed: folder sets have no generator",
                                 "psnr_ssim_true_pairs": "skipped: no reconstruct method"}
    else:
        entry["model"] = "cvae" if shift == 0 else "ddpm"
        entry["privacy"]["empirical_epsilon_worst_paper_code"] = stat(1.5 + shift, 0.2)
        entry["privacy"]["empirical_epsilon_mean_paper_code"] = stat(1.0 + shift, 0.2)
        entry["privacy"]["empirical_epsilon_worst_with_d"] = stat(3.0 + 2 * shift, 0.4)
        entry["privacy"]["empirical_epsilon_mean_with_d"] = stat(2.0 + 2 * shift, 0.4)
    if speed is not None:
        entry["sampling_speed"] = stat(speed, speed / 10)
    return entry


ASSESSMENT = {
    "schema_version": 2,
    "workflow": "assessment",
    "synthetic_sets": {
        # utility means over the 6 synthetic cells: cvae 4.1/6, ddpm 4.7/6, folder 2.9/6
        "cvae": _assessment_set("generator", 0.0, precision=0.2, ssim=0.9, robust=0.3, speed=1000.0),
        "ddpm": _assessment_set("checkpoint", 0.1, precision=0.8, ssim=0.3, robust=0.1, speed=10.0),
        "external": _assessment_set("folder", -0.2, precision=0.5, ssim=0.45, robust=0.2, speed=None),
    },
    "metadata": {
        "seeds": [0, 1, 2], "n_seeds": 3, "versions": {"torch": "2.13.0", "medsyn": "0.1.0"},
        "machine": {"python": "3.11"}, "config": {},
        "data": {"source": "digits (embedded)", "image_shape": [1, 8, 8], "class_names": ["0", "1"],
                 "split_sizes": {"train": 80, "val": 10, "test": 10}},
        "protocol": {"utility": "top-1 accuracy on the real test split", "robustness": "DeepFool, 5 steps",
                     "fidelity": "k=3 on the 1x subset", "privacy": "references: the training members"},
        "extractors": {"effnet_lite0": {"description": "EfficientNet-Lite0 (offline)"}},
        "wall_seconds": 12.5,
        "notes": ["a note for the reader"],
    },
}
ASSESSMENT["synthetic_sets"]["cvae"]["fidelity"]["true_pairs"] = {"psnr": stat(21.0, 0.5), "ssim": stat(0.7)}


def _quickstart_set(model: str, accuracy: float, precision: float, ssim: float, speed: float) -> dict:
    return {
        "kind": "generator",
        "model": model,
        "utility": _utility({"baseline_real": [0.95], "data_anonymization": [accuracy]}, ["1x"]),
        "fidelity": {"effnet_lite0": {"precision": stat(precision, 0.0, 1), "recall": stat(0.25, 0.0, 1),
                                      "density": stat(0.6, 0.0, 1), "coverage": stat(0.3, 0.0, 1),
                                      "fid": stat(40.0, 0.0, 1)}},
        "privacy": {"ssim_max_paper": stat(ssim, 0.0, 1), "ssim_max_full": stat(ssim, 0.0, 1)},
        "sampling_speed": stat(speed, 0.0, 1),
        "not_computed": {"empirical_epsilon": "disabled in the privacy config"},
        "per_seed": [{"seed": 0, "sampling_speed": speed}],
    }


QUICKSTART = {
    "schema_version": 2,
    "workflow": "quickstart",
    "synthetic_sets": {
        "cvae": _quickstart_set("cvae", 0.7, precision=0.3, ssim=0.5, speed=500.0),
        "ddpm": _quickstart_set("ddpm", 0.8, precision=0.6, ssim=0.6, speed=5.0),
    },
    "metadata": {"seeds": [0], "n_seeds": 1, "data": {"source": "digits"}},
}


def _sweep_set(sigma: float, fid: float, epsilon: float | None, accuracy: float) -> dict:
    return {
        "kind": "generator",
        "model": "cvae",
        "dp": {"sigma": sigma, "max_grad_norm": 1.0, "delta": None if sigma == 0 else 0.0125},
        "utility": {"data_anonymization": {"1x": {"accuracy": stat(accuracy), "macro_f1": stat(accuracy - 0.1)}}},
        "fidelity": {"effnet_lite0": {"fid_holdout": stat(fid, 1.0)}},
        "privacy": {"dp_epsilon": None if epsilon is None else stat(epsilon, epsilon / 10)},
        "not_computed": {},
        "per_seed": [{"seed": seed, "privacy": {"dp_epsilon": epsilon}} for seed in (0, 1, 2)],
    }


DP_SWEEP = {
    "schema_version": 2,
    "workflow": "dp_sweep",
    "synthetic_sets": {  # not in sigma order on purpose
        "sigma_2": _sweep_set(2.0, 90.0, 0.5, 0.4),
        "sigma_0": _sweep_set(0.0, 13.0, None, 0.9),
        "sigma_0.5": _sweep_set(0.5, 40.0, 8.0, 0.7),
    },
    "metadata": {
        "model": "cvae", "seeds": [0, 1, 2], "n_seeds": 3, "per_class": 10, "steps": 5, "batch_size": 4,
        "max_grad_norm": 1.0, "extractor": "effnet_lite0",
        "data": {"kind": "digits", "source": "embedded digits", "split_sizes": {"train": 80}},
        "notes": ["sigma = 0 trains without DP-SGD"],
    },
}


@pytest.fixture
def assessment_results() -> dict:
    return copy.deepcopy(ASSESSMENT)


@pytest.fixture
def quickstart_results() -> dict:
    return copy.deepcopy(QUICKSTART)


@pytest.fixture
def dp_sweep_results() -> dict:
    return copy.deepcopy(DP_SWEEP)


@pytest.fixture
def statistic():
    return stat
