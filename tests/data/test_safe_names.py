"""Class names as folder names: one safe path component each, clashes refused, destinations kept inside."""

import os
import re

import pytest

from medsyn.data.safe_names import class_folder_name, class_folder_names, destination_inside, listed_path


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("pneumonia", "pneumonia"),
        ("../../x", "_._.._x"),
        ("/etc/cron.d", "_etc_cron.d"),
        ("..", "_."),
        (".hidden", "_hidden"),
        ("a\nb\x00c", "a_b_c"),
        ("C:\\Windows", "C__Windows"),
        ('a<b>c"d|e?f*g', "a_b_c_d_e_f_g"),
        ("  Corn (maize)  ", "Corn (maize)"),
        (3, "3"),
    ],
)
def test_class_folder_name_is_one_visible_component(name, folder):
    assert class_folder_name(name) == folder
    assert os.sep not in folder and folder not in (".", "..") and not folder.startswith(".")


@pytest.mark.parametrize("name", ["", "   ", "/", "\x00"])
def test_name_with_nothing_left_is_refused(name):
    with pytest.raises(ValueError, match=rf"class name {re.escape(repr(name))} cannot be used as a folder name"):
        class_folder_name(name)


def test_overlong_name_is_refused():
    with pytest.raises(ValueError, match="longer than 200 bytes"):
        class_folder_name("é" * 101)  # 202 UTF-8 bytes


@pytest.mark.parametrize(("names", "clash"), [(["a/b", "a:b"], "a_b"), (["Normal", "normal"], "normal")])
def test_names_mapping_to_one_folder_are_refused(names, clash):
    with pytest.raises(ValueError, match=rf"map to the same folder name '{clash}'"):
        class_folder_names(names)


def test_destination_inside_returns_the_joined_path(tmp_path):
    assert destination_inside(tmp_path / "out", "pos/x.png") == tmp_path / "out" / "pos" / "x.png"


@pytest.mark.parametrize("relative", ["../x.png", "a/../../x.png", "/tmp/x.png", ".", ""])
def test_destination_outside_is_refused(tmp_path, relative):
    with pytest.raises(ValueError, match=r"refusing to write .*outside the output folder"):
        destination_inside(tmp_path / "out", relative)


def test_destination_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "real_patients"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pos").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match=rf"resolves to {re.escape(str(outside))}/x.png, outside the output"):
        destination_inside(tmp_path / "out", "pos/x.png")


def test_listed_path_inside_the_root_is_joined(tmp_path):
    assert listed_path(tmp_path, "a/b.png", where="labels CSV x.csv, row 1") == tmp_path / "a" / "b.png"
    assert listed_path(tmp_path, str(tmp_path / "c.png"), where="w") == tmp_path / "c.png"


def test_listed_path_outside_is_refused_unless_allowed(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(ValueError, match=r"^labels CSV x.csv, row 4: path '../real/p.dcm' resolves to .*real/p.dcm, "
                                         r"outside the data folder .*data; .*allow_outside_root: true"):
        listed_path(root, "../real/p.dcm", where="labels CSV x.csv, row 4")
    assert listed_path(root, "../real/p.dcm", where="w", allow_outside_root=True) == root / "../real/p.dcm"


@pytest.mark.parametrize("value", ["false", "true", 1, None])
def test_allow_outside_root_must_be_a_bool(tmp_path, value):
    with pytest.raises(ValueError, match=rf"allow_outside_root must be true or false, got {re.escape(repr(value))}"):
        listed_path(tmp_path, "../x.png", where="w", allow_outside_root=value)
