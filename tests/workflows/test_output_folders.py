"""Every writer of an output folder deletes or replaces only what it wrote: a study folder, a training run's
folder, a finished run with other settings, a folder another run holds, a path that is a file are refused
before anything is written (checksums of every file unchanged); a killed run's scratch is removed next time;
under DDP a refusal on rank 0 stops every rank."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medsyn.io.output_folder import (
    LOCK_NAME,
    OWNERSHIP_NAME,
    FolderInUseError,
    ForeignFolderError,
    SettingsMismatchError,
    claim_output_folder,
)
from medsyn.workflows.generate_images import generate_images
from medsyn.workflows.train_generator import run_settings, train_generator

ROOT = Path(__file__).resolve().parents[2]
DIGITS = {"kind": "digits", "options": {"size": 16}}
TINY = {"hidden_dims": [4, 8], "latent_dim": 4}
RUN = {"seed": 0, "per_class": 6, "model_config": TINY, "steps": 2, "batch_size": 12, "progress": False}


def tree_checksums(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (folders as 'dir'), hidden files included."""
    return {
        str(path.relative_to(folder)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
    }


def _study(folder: Path) -> Path:
    """A real study folder as a hospital has them."""
    (folder / "patient01").mkdir(parents=True)
    (folder / "patient01" / "scan.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)))
    (folder / "patient02").mkdir()
    (folder / "patient02" / "scan.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(255, -1, -1)))
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    train_generator("cvae", DIGITS, run, **RUN)
    return run


def test_generate_images_into_a_study_folder_is_refused_and_deletes_nothing(trained_run, tmp_path):
    study = _study(tmp_path / "study")
    before = tree_checksums(study)
    with pytest.raises(ForeignFolderError) as refusal:
        generate_images(trained_run, per_class=1, out_dir=study)
    assert str(refusal.value).startswith(
        f"out_dir {study} is not empty and medsyn did not write it (found patient01/, patient02/)"
    )
    assert tree_checksums(study) == before


def test_generate_images_into_the_training_runs_own_folder_is_refused(trained_run):
    before = tree_checksums(trained_run)
    with pytest.raises(ForeignFolderError) as refusal:
        generate_images(trained_run, per_class=1, out_dir=trained_run)
    message = str(refusal.value)
    assert f"out_dir {trained_run} holds the outputs of medsyn's train_generator (" in message
    assert "checkpoint.pt" in message and "not of generate_images" in message
    assert tree_checksums(trained_run) == before


@pytest.mark.parametrize(
    "override, difference",
    [
        ({"seed": 1}, "seed: 0 (finished run) vs 1 (this command)"),
        ({"per_class": 3}, "per_class: 6 (finished run) vs 3 (this command)"),
        ({"model_config": {**TINY, "latent_dim": 8}}, "model_config.latent_dim: 4 (finished run) vs 8 (this command)"),
        ({"data": {"kind": "digits", "options": {"size": 8}}}, "data.options.size: 16 (finished run) vs 8 (this command)"),
        ({"batch_size": 6}, "batch_size: 12 (finished run) vs 6 (this command)"),
    ],
)
def test_a_finished_run_with_other_settings_is_refused_before_any_write(trained_run, override, difference):
    before = tree_checksums(trained_run)
    arguments = {**RUN, **override}
    data = arguments.pop("data", DIGITS)
    with pytest.raises(SettingsMismatchError) as refusal:
        train_generator("cvae", data, trained_run, **arguments)
    message = str(refusal.value)
    assert message.startswith(f"output_dir {trained_run} holds a finished train_generator run made with other settings: ")
    assert difference in message and message.count(" (this command)") == 1
    assert tree_checksums(trained_run) == before  # split_manifest.json and training_summary.json untouched


def test_the_paper_defaults_spelled_out_are_the_same_settings():
    spelled = run_settings(
        "cvae", DIGITS, seed=0, per_class=None, model_config={"latent_dim": 128}, batch_size=32, dp=None
    )
    assert spelled == run_settings("cvae", DIGITS, seed=0, per_class=None, model_config={}, batch_size=32, dp=None)


def test_a_rerun_with_the_same_settings_resumes_and_may_train_longer(tmp_path):
    from medsyn.training.checkpoint import load_checkpoint

    run = tmp_path / "run"
    train_generator("cvae", DIGITS, run, **RUN)
    train_generator("cvae", DIGITS, run, **{**RUN, "steps": 4, "progress": False})
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4
    record = json.loads((run / OWNERSHIP_NAME).read_text())
    assert record["status"] == "finished" and record["writer"] == "train_generator"
    assert record["entries"] == ["checkpoint.pt", "split_manifest.json", "training_summary.json"]
    assert record["settings"]["model_config"]["latent_dim"] == 4 and record["settings"]["seed"] == 0


def test_a_model_config_the_data_cannot_take_writes_nothing_and_the_fixed_command_runs(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="divisible by"):  # 6 stride-2 stages on 16x16 images
        train_generator("cvae", DIGITS, run, **{**RUN, "model_config": {"hidden_dims": [4, 8, 8, 8, 8, 8]}})
    assert not run.exists()  # no split manifest, no ownership: the corrected command may use the folder
    train_generator("cvae", DIGITS, run, **RUN)
    assert (run / "checkpoint.pt").is_file()


def test_training_into_a_study_folder_is_refused(tmp_path):
    study = _study(tmp_path / "study")
    before = tree_checksums(study)
    with pytest.raises(ForeignFolderError, match=f"output_dir {study} is not empty and medsyn did not write it"):
        train_generator("cvae", DIGITS, study, **RUN)
    assert tree_checksums(study) == before


def test_a_second_run_into_a_folder_in_use_fails_at_once(trained_run):
    settings = run_settings("cvae", DIGITS, seed=0, per_class=6, model_config=TINY, batch_size=12, dp=None)
    before = tree_checksums(trained_run)
    with claim_output_folder(trained_run, writer="train_generator", settings=settings):  # the first run
        started = time.perf_counter()
        with pytest.raises(FolderInUseError, match=f"output_dir {trained_run} is in use by another medsyn run"):
            train_generator("cvae", DIGITS, trained_run, **RUN)
        assert time.perf_counter() - started < 5.0  # refused before loading the data
    assert tree_checksums(trained_run) == before


def _entry_points(tmp_path: Path):
    """(name, call(output folder)) of every workflow and export, with arguments that would otherwise run."""
    import torch

    from medsyn.data.export import export_dicom, export_nifti, export_png
    from medsyn.workflows.assessment import run_assessment
    from medsyn.workflows.dp_sweep import run_dp_sweep
    from medsyn.workflows.quickstart import run_quickstart

    images, labels = torch.rand(2, 1, 4, 4), [0, 1]
    classifier = {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3}
    return {
        "train_generator": lambda out: train_generator("cvae", DIGITS, out, **RUN),
        "generate_images": lambda out: generate_images(tmp_path, per_class=1, out_dir=out),
        "run_assessment": lambda out: run_assessment(
            str(out), data={"kind": "digits", "options": {"size": 16}, "per_class": 2}, seeds=[0, 1, 2],
            synthetic_sets={"cvae": {"kind": "generator", "model": "cvae", "config": {**TINY, "steps": 1}}},
            progress=False,
        ),
        "run_dp_sweep": lambda out: run_dp_sweep(
            str(out), data=DIGITS, model_config=TINY, sigmas=[0.0], seeds=[0], per_class=2, steps=1,
            batch_size=4, classifier=classifier, progress=False,
        ),
        "run_quickstart": lambda out: run_quickstart(
            str(out), data={**DIGITS, "per_class": 2}, models={"cvae": {"config": {**TINY, "steps": 1}}},
            speed={"count": 2, "warmup": 0, "repeats": 1}, classifier=classifier, privacy={"q": 2, "repeats": 1},
            progress=False,
        ),
        "export_png": lambda out: export_png(images, labels, out),
        "export_dicom": lambda out: export_dicom(images, labels, out),
        "export_nifti": lambda out: export_nifti(images, labels, out),
    }


ENTRY_POINTS = [
    "train_generator", "generate_images", "run_assessment", "run_dp_sweep", "run_quickstart",
    "export_png", "export_dicom", "export_nifti",
]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_writer_refuses_a_study_folder_and_a_file(tmp_path, name):
    call = _entry_points(tmp_path)[name]
    what = "out_dir" if name.startswith("export") or name == "generate_images" else "output_dir"
    study = _study(tmp_path / "study")
    before = tree_checksums(study)
    with pytest.raises(ForeignFolderError, match=f"{what} {study} is not empty and medsyn did not write it"):
        call(study)
    assert tree_checksums(study) == before
    path = tmp_path / "results.json"
    path.write_text("{}")
    with pytest.raises(NotADirectoryError, match=f"{what} {path}: expected a directory, found a file"):
        call(path)
    assert path.read_text() == "{}"


def _first_write_then_stop(monkeypatch):
    """Stop a workflow at its first feature extraction, after it has written its split manifest."""
    import medsyn.metrics.features.extract as extract

    class Stopped(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stopped

    monkeypatch.setattr(extract, "extract_features", stop)
    return Stopped


def test_dp_sweep_refuses_other_data_settings_but_may_add_seeds(tmp_path, monkeypatch):
    from medsyn.workflows.dp_sweep import run_dp_sweep

    stopped = _first_write_then_stop(monkeypatch)
    classifier = {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3}
    arguments = {"data": DIGITS, "model_config": TINY, "sigmas": [0.0], "seeds": [0], "per_class": 2,
                 "steps": 1, "batch_size": 4, "classifier": classifier, "progress": False}
    out = tmp_path / "sweep"
    with pytest.raises(stopped):
        run_dp_sweep(str(out), **arguments)
    assert (out / "seed_0" / "split_manifest.json").is_file()
    before = tree_checksums(out)
    with pytest.raises(SettingsMismatchError, match=r"an unfinished run_dp_sweep run .*per_class: 2 \(unfinished run\) vs 3 \(this command\)"):
        run_dp_sweep(str(out), **{**arguments, "per_class": 3})
    with pytest.raises(SettingsMismatchError, match=r"model_config.hidden_dims\[1\]: 8 \(unfinished run\) vs 16"):
        run_dp_sweep(str(out), **{**arguments, "model_config": {**TINY, "hidden_dims": [4, 16]}})
    assert tree_checksums(out) == before
    with pytest.raises(stopped):  # more seeds and sigmas, more steps: the same runs, continued
        run_dp_sweep(str(out), **{**arguments, "seeds": [0, 1], "sigmas": [0.0, 0.5], "steps": 3})


def test_assessment_refuses_another_split_and_writes_nothing_before_its_checks(tmp_path, monkeypatch):
    from medsyn.workflows.assessment import run_assessment

    stopped = _first_write_then_stop(monkeypatch)
    data = {"kind": "digits", "options": {"size": 16}, "per_class": 2}
    sets = {"cvae": {"kind": "generator", "model": "cvae", "config": {**TINY, "steps": 1}}}
    out = tmp_path / "assess"
    with pytest.raises(ValueError, match="synthetic_sets"):  # an input error: refused before the first byte
        run_assessment(str(out), data=data, seeds=[0], synthetic_sets={"x": {"kind": "nope"}}, progress=False)
    assert not out.exists()
    with pytest.raises(stopped):
        run_assessment(str(out), data=data, seeds=[0], synthetic_sets=sets, progress=False)
    assert (out / "split_manifest.json").is_file()
    before = tree_checksums(out)
    with pytest.raises(SettingsMismatchError, match=r"data.split_seed: 0 \(unfinished run\) vs 1 \(this command\)"):
        run_assessment(str(out), data={**data, "split_seed": 1}, seeds=[0], synthetic_sets=sets, progress=False)
    other = {"cvae": {**sets["cvae"], "config": {**TINY, "latent_dim": 8, "steps": 1}}}
    with pytest.raises(SettingsMismatchError, match=r"generators.cvae.model_config.latent_dim: 4 \(unfinished run\) vs 8"):
        run_assessment(str(out), data=data, seeds=[0], synthetic_sets=other, progress=False)
    assert tree_checksums(out) == before


def test_quickstart_refuses_other_generator_settings(tmp_path, monkeypatch):
    from medsyn.workflows.quickstart import run_quickstart

    stopped = _first_write_then_stop(monkeypatch)
    arguments = {"data": {**DIGITS, "per_class": 2}, "speed": {"count": 2, "warmup": 0, "repeats": 1},
                 "classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3},
                 "privacy": {"q": 2, "repeats": 1}, "progress": False}
    out = tmp_path / "quick"
    with pytest.raises(stopped):
        run_quickstart(str(out), models={"cvae": {"config": {**TINY, "steps": 1}}}, **arguments)
    before = tree_checksums(out)
    with pytest.raises(SettingsMismatchError, match=r"models.cvae.batch_size: 32 \(unfinished run\) vs 8"):
        run_quickstart(str(out), models={"cvae": {"config": {**TINY, "steps": 1, "batch_size": 8}}}, **arguments)
    assert tree_checksums(out) == before
    with pytest.raises(stopped):  # more steps resume the same generator
        run_quickstart(str(out), models={"cvae": {"config": {**TINY, "steps": 5}}}, **arguments)


_KILLED_WHILE_WRITING = """
import os, signal, sys
import medsyn.workflows.generate_images as workflow
real, count = workflow.write_bytes_atomic, [0]
def write_then_die(path, data):
    count[0] += 1
    if count[0] == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, data)
workflow.write_bytes_atomic = write_then_die
workflow.generate_images(sys.argv[1], per_class=2, out_dir=sys.argv[2])
"""


def test_a_killed_generate_images_leaves_the_old_set_and_its_scratch_is_removed_next_time(trained_run, tmp_path):
    import numpy as np

    out = tmp_path / "synthetic"
    generate_images(trained_run, per_class=1, seed=3, out_dir=out)
    old = tree_checksums(out)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_WRITING, str(trained_run), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    scratch = [p.name for p in out.iterdir() if p.name.startswith(".medsyn-staging-")]
    assert len(scratch) == 1  # the killed run's half-written set
    assert {k: v for k, v in tree_checksums(out).items() if not k.startswith(".medsyn-")} == {
        k: v for k, v in old.items() if not k.startswith(".medsyn-")
    }  # the previous set is whole
    generate_images(trained_run, per_class=2, out_dir=out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [OWNERSHIP_NAME, LOCK_NAME, *[str(c) for c in range(10)], "synthetic.npz"]
    assert np.load(out / "synthetic.npz")["labels"].shape == (20,)


def test_disk_full_while_training_names_the_file(tmp_path, monkeypatch):
    import medsyn.io.atomic as atomic

    real_fsync = atomic.os.fsync

    def full_for_checkpoints(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".checkpoint.pt."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", full_for_checkpoints)
    run = tmp_path / "run"
    with pytest.raises(OSError) as failure:
        train_generator("cvae", DIGITS, run, **RUN)
    assert failure.value.errno == errno.ENOSPC
    assert f"No space left on device while writing {run / 'checkpoint.pt'}" in str(failure.value)
    assert not [p for p in run.iterdir() if p.name.endswith(".medsyn-tmp")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train_on_rank(rank: int, world_size: int, port: int, run: str, report: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        train_generator("cvae", DIGITS, run, **{**RUN, "distributed": "gloo"})
        outcome = "trained"
    except Exception as error:  # the test reads every rank's outcome
        outcome = f"{type(error).__name__}: {error}"
    finally:
        dist.destroy_process_group()
    Path(report, f"rank{rank}.txt").write_text(outcome)


def _run_two_ranks(run: Path, report: Path) -> list[str]:
    import torch.multiprocessing as mp

    context = mp.start_processes(
        _train_on_rank, args=(2, _free_port(), str(run), str(report)), nprocs=2, join=False, start_method="fork"
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("a rank hung after rank 0 was refused")
    return [(report / f"rank{rank}.txt").read_text() for rank in range(2)]


def test_under_ddp_rank_0_holds_the_folder_and_a_refusal_stops_every_rank(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    settings = run_settings("cvae", DIGITS, seed=0, per_class=6, model_config=TINY, batch_size=12, dp=None)
    before = tree_checksums(copy)
    with claim_output_folder(copy, writer="train_generator", settings=settings):  # another run holds it
        outcomes = _run_two_ranks(copy, tmp_path)
    assert outcomes[0].startswith(f"FolderInUseError: output_dir {copy} is in use by another medsyn run")
    assert outcomes[1].startswith("RuntimeError: rank 0 refused the run: FolderInUseError: output_dir")
    assert tree_checksums(copy) == before
    assert _run_two_ranks(copy, tmp_path) == ["trained", "trained"]  # free again: both ranks resume it


@pytest.mark.slow
def test_the_inference_bundle_refuses_a_study_folder(trained_run, tmp_path):
    """The reported loss, end to end: `inference.yaml --out_dir <a study folder>` exits non-zero and deletes
    nothing (the training run's own folder as out_dir: test_generate_images_into_the_training_runs_own_folder...)."""
    study = _study(tmp_path / "study")
    for out_dir, expected in (
        (study, f"out_dir {study} is not empty and medsyn did not write it (found patient01/, patient02/)"),
    ):
        before = tree_checksums(out_dir)
        command = [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str(ROOT / "bundles" / "medsyn_cvae" / "configs" / "inference.yaml"),
            "--output_dir", str(trained_run), "--out_dir", str(out_dir), "--per_class", "1",
        ]
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr[-3000:]
        assert tree_checksums(out_dir) == before


@pytest.mark.parametrize("name", ["run_dp_sweep", "run_quickstart", "run_assessment"])
def test_a_generator_config_the_data_cannot_take_is_refused_before_the_split_is_written(tmp_path, name):
    from medsyn.workflows.assessment import run_assessment
    from medsyn.workflows.dp_sweep import run_dp_sweep
    from medsyn.workflows.quickstart import run_quickstart

    deep = {"hidden_dims": [4, 8, 8, 8, 8, 8]}  # 6 stride-2 stages cannot take 16x16 images
    classifier = {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3}
    calls = {
        "run_dp_sweep": lambda out: run_dp_sweep(
            str(out), data=DIGITS, model_config=deep, sigmas=[0.0], seeds=[0], per_class=2, steps=1,
            batch_size=4, classifier=classifier, progress=False,
        ),
        "run_quickstart": lambda out: run_quickstart(
            str(out), data={**DIGITS, "per_class": 2}, models={"cvae": {"config": {**deep, "steps": 1}}},
            speed={"count": 2, "warmup": 0, "repeats": 1}, classifier=classifier, privacy={"q": 2, "repeats": 1},
            progress=False,
        ),
        "run_assessment": lambda out: run_assessment(
            str(out), data={**DIGITS, "per_class": 2}, seeds=[0], progress=False,
            synthetic_sets={"cvae": {"kind": "generator", "model": "cvae", "config": {**deep, "steps": 1}}},
        ),
    }
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="divisible by"):
        calls[name](out)
    assert not out.exists()
