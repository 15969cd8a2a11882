"""Every workflow entry point refuses unknown and ill-typed keys at every level before any work, naming the
key path and the nearest valid key (the typed sections of medsyn.config.sections)."""

from __future__ import annotations

import pytest

from medsyn.config.sections import (
    AssessmentPrivacy,
    ClassifierSection,
    FidelitySection,
    SpeedSection,
    parse_classifier,
)
from medsyn.config.strict import ConfigError, parse_section
from medsyn.metrics.kid import KID_DEFAULTS
from medsyn.metrics.privacy.ssim_max_protocol import PAPER_Q, PAPER_REPEATS
from medsyn.models.classifiers import CLASSIFIER_HYPERPARAMETERS
from medsyn.workflows.assessment import run_assessment
from medsyn.workflows.dp_sweep import run_dp_sweep
from medsyn.workflows.generate_images import generate_images
from medsyn.workflows.quickstart import run_quickstart
from medsyn.workflows.train_generator import train_generator

DIGITS = {"kind": "digits", "options": {"size": 32}}
CVAE_SET = {"cvae": {"kind": "generator", "model": "cvae", "config": {"hidden_dims": [8, 16, 32], "steps": 2}}}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"privacy": {"qq": 5}}, r"^privacy\.qq: unknown key; did you mean 'q'\?$"),
        ({"data": {**DIGITS, "per_clas": 2}}, r"^data\.per_clas: unknown key; did you mean 'per_class'\?$"),
        ({"data": {"kind": "digits", "options": {"szie": 32}}}, r"^data\.options\.szie: unknown key; did you mean 'size'\?$"),
        ({"data": {"kind": "digitz"}}, r"^data\.kind: unknown data source 'digitz'; did you mean 'digits'\?$"),
        ({"utility": {"classifier": {"epoch": 1}}}, r"^utility\.classifier\.epoch: unknown key; did you mean 'epochs'\?$"),
        ({"utility": {"multiplier": [1]}}, r"^utility\.multiplier: unknown key; did you mean 'multipliers'\?$"),
        ({"robustness": {"step": 5}}, r"^robustness\.step: unknown key; did you mean 'steps'\?$"),
        ({"robustness": {"engine": "fast"}}, r"robustness\.engine must be one of 'auto', 'autograd', 'sequential'"),
        ({"privacy": {"ssim_scan": "drawn"}}, r"^privacy\.ssim_scan: expected one of \['full', 'paper'\], got 'drawn'$"),
        ({"privacy": {"empirical_epsilon": {"n_querys": 1}}},
         r"^privacy\.empirical_epsilon\.n_querys: unknown key; did you mean 'n_queries'\?$"),
        ({"fidelity": {"kid": {"subset": 5}}}, r"^fidelity\.kid\.subset: unknown key; did you mean 'subsets'\?$"),
        ({"fidelity": {"extractor": ["effnet_lite0"]}}, r"^fidelity\.extractor: unknown key; did you mean 'extractors'\?$"),
        ({"speed": {"repeat": 1}}, r"^speed\.repeat: unknown key; did you mean 'repeats'\?$"),
        ({"synthetic_sets": {"cvae": {**CVAE_SET["cvae"], "config": {"latent_dimm": 4}}}},
         r"^synthetic_sets\.cvae\.config\.latent_dimm: unknown key; did you mean 'latent_dim'\?$"),
        ({"synthetic_sets": {"x": {"kind": "folder", "path": "x", "label_csv": "y"}}},
         r"^synthetic_sets\.x\.label_csv: unknown key; did you mean 'labels_csv'\?$"),
        ({"speed": {"count": "eight"}}, r"^speed\.count: expected an integer, got 'eight'$"),
        ({"fidelity": {"domain": "maybe"}}, r"^fidelity\.domain: expected true or false, got 'maybe'$"),
        ({"seeds": "0"}, r"^seeds: expected a list, got '0'$"),
        ({"progres": False}, r"^progres: unknown key; did you mean 'progress'\?$"),
    ],
)
def test_assessment_refuses_bad_keys_before_any_work(tmp_path, override, message):
    arguments = {"data": DIGITS, "synthetic_sets": CVAE_SET, "progress": False, **override}
    with pytest.raises(ConfigError, match=message):
        run_assessment(str(tmp_path / "out"), **arguments)
    assert not (tmp_path / "out").exists()


SWEEP = {"data": DIGITS, "sigmas": [0.0, 0.1], "seeds": [0], "per_class": 2, "steps": 2, "batch_size": 4,
         "classifier": {"epochs": 1}, "progress": False}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"classifier": {"epoch": 1}}, r"^classifier\.epoch: unknown key; did you mean 'epochs'\?$"),
        ({"classifier": {"arch": "cnn5"}}, r"^classifier\.arch: unknown classifier arch 'cnn5'"),
        ({"empirical_epsilon": {"samples_per_clas": 3}},
         r"^empirical_epsilon\.samples_per_clas: unknown key; did you mean 'samples_per_class'\?$"),
        ({"empirical_epsilon": {"k": 3}}, r"^empirical_epsilon\.samples_per_class: required key is missing$"),
        ({"empirical_epsilon": {"samples_per_class": 2, "k": 5}},
         r"^empirical_epsilon\.k: must not exceed samples_per_class \(2\), got 5$"),
        ({"data": {**DIGITS, "option": {}}}, r"^data\.option: unknown key; did you mean 'options'\?$"),
        ({"model_config": {"latent_dimm": 4}}, r"^model_config\.latent_dimm: unknown key; did you mean 'latent_dim'\?$"),
        ({"batch_size": "eight"}, r"^batch_size: expected an integer, got 'eight'$"),
        ({"max_grad_norm": "one"}, r"^max_grad_norm: expected a number, got 'one'$"),
    ],
)
def test_dp_sweep_refuses_bad_keys_before_any_work(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_dp_sweep(str(tmp_path / "out"), **{**SWEEP, **override})
    assert not (tmp_path / "out").exists()


QUICK = {"data": DIGITS, "models": {"cvae": {"config": {"steps": 2}}}, "speed": {}, "classifier": {},
         "privacy": {}, "progress": False}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"models": {"cvea": {}}}, r"^models\.cvea: unknown key; did you mean 'cvae'\?$"),
        ({"models": {"cvae": {"confg": {}}}}, r"^models\.cvae\.confg: unknown key; did you mean 'config'\?$"),
        ({"models": {"cvae": {"config": {"stepz": 3}}}}, r"^models\.cvae\.config\.stepz: unknown key; did you mean 'steps'\?$"),
        ({"models": {"stylegan2": {"config": {"preset": "tiny", "r1_gama": 1.0}}}},
         r"^models\.stylegan2\.config\.r1_gama: unknown key; did you mean 'r1_gamma'\?$"),
        ({"privacy": {"qq": 5}}, r"^privacy\.qq: unknown key; did you mean 'q'\?$"),
        ({"speed": {"warmpu": 1}}, r"^speed\.warmpu: unknown key; did you mean 'warmup'\?$"),
        ({"classifier": {"lr": "fast"}}, r"^classifier\.lr: expected a number or null, got 'fast'$"),
        ({"data": {**DIGITS, "per_class": "ten"}}, r"^data\.per_class: expected an integer or null, got 'ten'$"),
        ({"robustness_steps": "5"}, r"^robustness_steps: expected an integer, got '5'$"),
    ],
)
def test_quickstart_refuses_bad_keys_before_any_work(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_quickstart(str(tmp_path / "out"), **{**QUICK, **override})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"batch_size": "eight"}, r"^batch_size: expected an integer, got 'eight'$"),
        ({"batch_szie": 8}, r"^batch_szie: unknown key; did you mean 'batch_size'\?$"),
        ({"model_config": {"latent_dimm": 4}}, r"^model_config\.latent_dimm: unknown key; did you mean 'latent_dim'\?$"),
        ({"model_config": {"latent_dim": "big"}}, r"^model_config\.latent_dim: expected an integer, got 'big'$"),
        ({"dp": {"noise_multiplier": 1.0, "max_grad_nrom": 1.0}},
         r"^dp\.max_grad_nrom: unknown key; did you mean 'max_grad_norm'\?$"),
        ({"progress": "maybe"}, r"^progress: expected true or false, got 'maybe'$"),
        ({"device": "tpu"}, r"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"),
    ],
)
def test_train_generator_refuses_bad_keys_before_any_work(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        train_generator(model="cvae", data=DIGITS, output_dir=tmp_path / "out", steps=1, **override)
    assert not (tmp_path / "out").exists()


def test_generate_images_refuses_ill_typed_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"^per_class: expected an integer, got 'ten'$"):
        generate_images(tmp_path, per_class="ten")
    with pytest.raises(ConfigError, match=r"^sampling: expected a mapping or null, got 3$"):
        generate_images(tmp_path, per_class=1, sampling=3)


def test_section_defaults_are_the_named_paper_constants():
    privacy = parse_section(AssessmentPrivacy, None, path="privacy")
    assert (privacy.q, privacy.repeats) == (PAPER_Q, PAPER_REPEATS) == (100, 10)  # paper 000 §4.1.6
    kid = parse_section(FidelitySection, None, path="fidelity").kid
    assert (kid.subsets, kid.subset_size) == (KID_DEFAULTS["subsets"], KID_DEFAULTS["subset_size"])
    assert parse_section(SpeedSection, {"repeats": 2}, path="speed") == SpeedSection(count=100, warmup=1, repeats=2)
    # a classifier left partly unset takes its arch's paper values (paper 000 Appendix A)
    vgg = CLASSIFIER_HYPERPARAMETERS["vgg16"]
    assert parse_classifier({"arch": "vgg16", "epochs": 3}, "classifier") == {
        "arch": "vgg16", "epochs": 3, "batch_size": vgg.batch_size, "lr": vgg.lr, "num_workers": 0, "top_k": 1,
        "geometric_da": {"max_rotation_degrees": 15.0, "hflip_probability": 0.5, "vflip_probability": 0.5}}
    assert parse_section(ClassifierSection, {"lr": "null"}, path="c").lr is None


def test_stylegan2_presets_are_part_of_its_model_config():
    from medsyn.models.registry import model_config_of
    from medsyn.models.stylegan2 import STYLEGAN2_PRESETS

    config = model_config_of("stylegan2", {"preset": "tiny", "r1_gamma": 1.0})
    assert config["w_dim"] == STYLEGAN2_PRESETS["tiny"]["w_dim"] and config["r1_gamma"] == 1.0
    with pytest.raises(ValueError, match=r"^model_config\.preset: unknown stylegan2 preset 'small'"):
        model_config_of("stylegan2", {"preset": "small"})


def test_stylegan2_takes_its_device_from_the_training_settings_like_every_generator():
    from medsyn.models.stylegan2 import ConditionalStyleGAN2

    model = ConditionalStyleGAN2.from_config({"preset": "tiny"}, num_classes=2, image_shape=(1, 8, 8),
                                             training={"device": "cpu"})
    assert model.device.type == "cpu" and next(model.G.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"):
        ConditionalStyleGAN2.from_config({"preset": "tiny"}, num_classes=2, image_shape=(1, 8, 8),
                                         training={"device": "tpu"})
