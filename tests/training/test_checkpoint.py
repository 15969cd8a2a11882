"""Checkpoints never run code and never load a damaged file: weights-only unpickling, a SHA-256 of the
payload checked before anything is unpickled, and a save that refuses objects a weights-only load would."""

import hashlib
import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from medsyn.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state() -> dict:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return {
        "step": 7,
        "state": {"model": model.state_dict(), "optimizer": optimizer.state_dict()},
        "torch_rng": torch.get_rng_state(),
        "history": [{"loss": 0.5}],
        "metadata": {"class_names": ["a", "b"], "epsilon": None},
    }


class _RunsCode:
    """Unpickling this calls os.system: what a hostile checkpoint would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_with_valid_header(path: Path, payload: object) -> None:
    """A file with a correct medsyn header and checksum around an arbitrary pickled payload."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    header = f"{CHECKPOINT_FORMAT}\nsha256 {hashlib.sha256(data).hexdigest()} {len(data)}\n".encode()
    path.write_bytes(header + data)


def test_round_trip_keeps_every_entry(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={"lr": 0.1}, state=state)
    payload = load_checkpoint(path, model="linear", config={"lr": 0.1})
    assert payload["step"] == 7 and payload["history"] == [{"loss": 0.5}]
    assert payload["metadata"] == {"class_names": ["a", "b"], "epsilon": None}
    torch.testing.assert_close(payload["state"]["model"]["weight"], state["state"]["model"]["weight"])
    assert payload["state"]["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(payload["torch_rng"], state["torch_rng"])


def test_file_starts_with_the_format_and_checksum_of_its_payload(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state={"step": 1})
    raw = path.read_bytes()
    magic, checksum_line, payload = raw.split(b"\n", 2)
    assert magic.decode() == CHECKPOINT_FORMAT
    _, digest, length = checksum_line.decode().split()
    assert digest == hashlib.sha256(payload).hexdigest() and int(length) == len(payload)


@pytest.mark.parametrize("where", ["middle", "start of payload", "end"])
def test_400_corrupted_bytes_are_a_checksum_error_naming_the_file(tmp_path, where):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state=_state())
    raw = bytearray(path.read_bytes())
    header_length = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    start = {"middle": len(raw) // 2 - 200, "start of payload": header_length, "end": len(raw) - 400}[where]
    assert start >= header_length
    raw[start:start + 400] = bytes(255 - b for b in raw[start:start + 400])
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"^checkpoint {re.escape(str(path))} is corrupted: checksum mismatch"):
        load_checkpoint(path)


def test_truncated_file_is_refused_naming_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state=_state())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(ValueError, match=rf"^checkpoint {re.escape(str(path))} is truncated: the header declares"):
        load_checkpoint(path)


def test_bytes_appended_after_the_payload_are_corruption(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state={"step": 1})
    path.write_bytes(path.read_bytes() + b"x")
    message = rf"checkpoint {re.escape(str(path))} is corrupted: the file holds \d+ payload bytes, more than"
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def test_damaged_length_field_is_truncation_not_a_huge_read(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state={"step": 1})
    magic, checksum_line, payload = path.read_bytes().split(b"\n", 2)
    _, digest, _ = checksum_line.split()
    path.write_bytes(magic + b"\nsha256 " + digest + b" 99999999999999999999\n" + payload)
    with pytest.raises(ValueError, match=r"is truncated: the header declares 99999999999999999999 payload bytes"):
        load_checkpoint(path)


def test_damaged_header_is_corruption(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model="linear", config={}, state={"step": 1})
    raw = bytearray(path.read_bytes())
    raw[len(CHECKPOINT_FORMAT) + 3] ^= 0xFF  # inside "sha256"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(path))} is corrupted: unreadable checksum"):
        load_checkpoint(path)


def test_pickled_callable_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "hostile.pt"
    _write_with_valid_header(path, {"format": CHECKPOINT_FORMAT, "model": "cvae", "config": {},
                                    "hook": _RunsCode(marker)})
    before = _sha256(path)
    with pytest.raises(ValueError, match=rf"^checkpoint {re.escape(str(path))} contains non-weight objects"):
        load_checkpoint(path)
    assert not marker.exists()
    assert _sha256(path) == before


def test_plain_torch_save_with_code_is_refused_before_unpickling(tmp_path):
    """A file without the medsyn header (any torch.save, or a checkpoint of medsyn < v2) is not opened."""
    marker = tmp_path / "code_ran"
    path = tmp_path / "old.pt"
    torch.save({"format": "medsyn-checkpoint-v1", "model": "cvae", "hook": _RunsCode(marker)}, path)
    with pytest.raises(ValueError, match=rf"checkpoint {re.escape(str(path))} is not a {CHECKPOINT_FORMAT} file.*"
                                         "written before checksummed checkpoints"):
        load_checkpoint(path)
    assert not marker.exists()


def test_unknown_global_is_refused_naming_it(tmp_path):
    path = tmp_path / "numpy.pt"
    _write_with_valid_header(path, {"format": CHECKPOINT_FORMAT, "model": "cvae", "config": {},
                                    "array": np.arange(3)})
    with pytest.raises(ValueError, match="contains non-weight objects.*numpy"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        (np.float64(0.5), "numpy.float64"),
        (np.arange(2), "numpy.ndarray"),
        (print, "builtins.builtin_function_or_method"),
        (Path("x"), "pathlib"),
    ],
)
def test_save_refuses_what_a_weights_only_load_would_refuse(tmp_path, entry, name):
    with pytest.raises(TypeError, match=rf"checkpoint entry metadata\.epsilon is a {re.escape(name)}"):
        save_checkpoint(tmp_path / "c.pt", model="m", config={}, state={"metadata": {"epsilon": entry}})
    assert not (tmp_path / "c.pt").exists()


def test_save_refuses_objects_inside_lists(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint entry history\[1\] is a builtins.set"):
        save_checkpoint(tmp_path / "c.pt", model="m", config={}, state={"history": [{}, {1}]})


def test_pickle_error_type_is_what_torch_raises_for_a_global():
    """The refusal relies on torch raising UnpicklingError for an unknown global under weights_only."""
    buffer = io.BytesIO()
    torch.save({"x": np.arange(2)}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer, weights_only=True)
