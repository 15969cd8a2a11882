"""medsyn.config.bundle: every shipped bundle config refuses a top-level key nothing references (a typo such
as --batch_szie on the command line), in MONAI's own ConfigWorkflow.initialize, before run instantiates
anything; the shipped configs themselves pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow

from medsyn.config.bundle import check_config_keys, check_top_level_keys, referenced_top_level_ids
from medsyn.config.strict import ConfigError

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"

# every config a user runs, with the override files the READMEs put after it
CONFIG_SETS = {
    "cvae train": ["medsyn_cvae/configs/train.yaml", "medsyn_cvae/configs/tiny.yaml"],
    "cvae multigpu": ["medsyn_cvae/configs/train.yaml", "medsyn_cvae/configs/tiny.yaml",
                      "medsyn_cvae/configs/train_multigpu.yaml"],
    "cvae inference": ["medsyn_cvae/configs/inference.yaml"],
    "stylegan2 train": ["medsyn_stylegan2/configs/train.yaml", "medsyn_stylegan2/configs/tiny.yaml"],
    "stylegan2 multigpu": ["medsyn_stylegan2/configs/train.yaml", "medsyn_stylegan2/configs/train_multigpu.yaml"],
    "stylegan2 inference": ["medsyn_stylegan2/configs/inference.yaml"],
    "ldm train": ["medsyn_ldm/configs/train.yaml", "medsyn_ldm/configs/tiny.yaml"],
    "ldm multigpu": ["medsyn_ldm/configs/train.yaml", "medsyn_ldm/configs/train_multigpu.yaml"],
    "ldm inference": ["medsyn_ldm/configs/inference.yaml"],
    "ddpm train": ["medsyn_ddpm/configs/train.yaml", "medsyn_ddpm/configs/tiny.yaml"],
    "ddpm multigpu": ["medsyn_ddpm/configs/train.yaml", "medsyn_ddpm/configs/train_multigpu.yaml"],
    "ddpm inference": ["medsyn_ddpm/configs/inference.yaml"],
    "assessment": ["medsyn_assessment/configs/assess.yaml", "medsyn_assessment/configs/tiny.yaml"],
    "dp sweep": ["medsyn_dp_sweep/configs/sweep.yaml", "medsyn_dp_sweep/configs/tiny.yaml"],
    "quickstart": ["medsyn_quickstart/configs/quickstart.yaml"],
}


def _workflow(files: list[str], tmp_path: Path, **overrides) -> ConfigWorkflow:
    paths = [str(BUNDLES / name) for name in files]
    meta = BUNDLES / Path(files[0]).parent / "metadata.json"
    return ConfigWorkflow(config_file=paths, meta_file=str(meta), workflow_type=None,
                          output_dir=str(tmp_path / "out"), **overrides)


@pytest.mark.parametrize("name", sorted(CONFIG_SETS))
def test_shipped_configs_pass_and_a_top_level_typo_is_refused_before_run(name, tmp_path):
    files = CONFIG_SETS[name]
    assert _workflow(files, tmp_path).initialize() == [None]  # the check ran, nothing was instantiated
    typo = "per_clas" if "per_class" in ConfigParser.load_config_files([str(BUNDLES / f) for f in files]) else "progres"
    workflow = _workflow(files, tmp_path, **{typo: 2})
    with pytest.raises(RuntimeError) as raised:
        workflow.initialize()
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigError)
    suggestion = {"per_clas": "per_class", "progres": "progress"}[typo]
    assert str(cause) == f"{typo}: unknown key; did you mean {suggestion!r}?"
    assert not (tmp_path / "out").exists()


def test_batch_size_typo_names_batch_size(tmp_path):
    workflow = _workflow(CONFIG_SETS["cvae train"], tmp_path, batch_szie=8)
    with pytest.raises(RuntimeError) as raised:
        workflow.initialize()
    assert str(raised.value.__cause__) == "batch_szie: unknown key; did you mean 'batch_size'?"


def test_every_generator_bundle_wires_device(tmp_path):
    for model in ("cvae", "stylegan2", "ldm", "ddpm"):
        workflow = _workflow([f"medsyn_{model}/configs/train.yaml"], tmp_path)
        assert workflow.parser["device"] == "cpu"
        assert workflow.parser["training"]["device"] == "@device", model


def test_references_inside_expressions_and_nested_ids_count():
    config = {"a": 1, "b": {"c": 2}, "d": 3, "e": 4, "run": {"x": "@a", "y": "$@b#c + 1", "z": "@d::q"}}
    assert referenced_top_level_ids(config) == {"a", "b", "d"}
    with pytest.raises(ConfigError, match=r"^e: unknown key; valid keys: 'a', 'b', 'd', 'run'$"):
        check_config_keys(config)
    check_config_keys({"_meta_": {}, "initialize": [], "run": ["@training"], "training": {"n": "@n"}, "n": 1})


def test_the_check_refuses_to_pass_silently_outside_a_config_parser():
    with pytest.raises(RuntimeError, match="no parser was found on the call stack"):
        check_top_level_keys()
