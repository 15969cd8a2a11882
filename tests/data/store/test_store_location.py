"""Where stores live (cache_dir, MEDSYN_CACHE_DIR, XDG_CACHE_HOME, ~/.cache) and how their folders are
named: a digest of kind, source root, options and dtype, so different ones never share a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsyn.data.store import CACHE_ENV, resolve_cache_dir
from medsyn.data.store.build_options import canonical_options
from medsyn.data.store.location import store_folder_name, store_key


def test_explicit_cache_dir_then_environment_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir(tmp_path / "given") == tmp_path / "given"
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv(CACHE_ENV)
    assert resolve_cache_dir() == tmp_path / "xdg" / "medsyn" / "stores"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG spec says
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "medsyn" / "stores"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "medsyn" / "stores"


def test_a_build_without_cache_dir_uses_the_environment(source, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "from_env"))
    build = source.build(cache_dir=None)
    assert build.store.path.parent == tmp_path / "from_env"


def _name(root="/data/a", options=None, dtype="auto", kind="image_folder"):
    options = canonical_options(options or {"size": 64})
    return store_folder_name(kind, store_key(kind=kind, root=root, options=options, dtype=dtype))


def test_folder_names_differ_with_every_part_of_the_identity():
    names = {_name(), _name(root="/data/b"), _name(options={"size": 32}), _name(dtype="uint16"),
             _name(kind="dicom_folder")}
    assert len(names) == 5
    assert _name().startswith("image_folder-") and len(_name()) == len("image_folder-") + 32
    assert _name(options={"size": 64, "channels": 3}) == _name(options={"channels": 3, "size": 64})
    assert _name(options={"window": (0, 1)}) == _name(options={"window": [0, 1]})


def test_options_must_be_json_values():
    with pytest.raises(TypeError, match=r"options.labels_csv is a PosixPath; build options must be JSON values"):
        canonical_options({"labels_csv": Path("/data/labels.csv")})
    with pytest.raises(ValueError, match=r"options.window\[1\] must be a finite number"):
        canonical_options({"window": [0, float("nan")]})
    with pytest.raises(TypeError, match="option keys must be strings"):
        canonical_options({1: "a"})


@pytest.mark.parametrize("kind", ["Image Folder", "../up", "", "x" * 41])
def test_kind_must_be_a_plain_name(source, kind):
    with pytest.raises(ValueError, match="kind must name the source reader"):
        source.build(kind=kind)


def test_a_store_folder_is_private_to_its_user(source):
    assert source.build().store.path.stat().st_mode & 0o777 == 0o700
