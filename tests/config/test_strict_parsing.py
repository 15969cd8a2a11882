"""medsyn.config.strict: unknown keys at every level with the nearest valid key, ill-typed values, and the
command-line strings true / false / null."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from medsyn.config.strict import (
    ConfigError,
    coerce_value,
    parse_arguments,
    parse_section,
    section_to_dict,
    strict_arguments,
    unknown_key_message,
)


@dataclass(frozen=True)
class _Inner:
    k: int = 5
    enabled: bool = True


@dataclass(frozen=True)
class _Outer:
    q: int = 100
    rate: float = 0.5
    name: str | None = None
    dims: tuple[int, ...] = (1, 2)
    inner: _Inner = field(default_factory=_Inner)
    maybe_inner: _Inner | None = None
    free: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.q < 1:
            raise ValueError(f"q: must be >= 1, got {self.q}")


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"qq": 5}, r"^privacy\.qq: unknown key; did you mean 'q'\?$"),
        ({"inner": {"kk": 1}}, r"^privacy\.inner\.kk: unknown key; did you mean 'k'\?$"),
        ({"maybe_inner": {"enabld": False}}, r"^privacy\.maybe_inner\.enabld: unknown key; did you mean 'enabled'\?$"),
        # nothing close: every valid key is listed instead of a guess
        ({"zzzzzz": 1}, r"^privacy\.zzzzzz: unknown key; valid keys: 'q', 'rate', 'name', 'dims', 'inner', "),
    ],
)
def test_unknown_keys_name_the_path_and_the_nearest_key(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse_section(_Outer, mapping, path="privacy")


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"q": "eight"}, r"^privacy\.q: expected an integer, got 'eight'$"),
        ({"q": "8"}, r"^privacy\.q: expected an integer, got '8'$"),  # a string is never a number
        ({"q": 8.0}, r"^privacy\.q: expected an integer, got 8\.0$"),
        ({"q": True}, r"^privacy\.q: expected an integer, got True$"),  # bool is not an int here
        ({"rate": "fast"}, r"^privacy\.rate: expected a number, got 'fast'$"),
        ({"name": 3}, r"^privacy\.name: expected a string or null, got 3$"),
        ({"dims": 3}, r"^privacy\.dims: expected a list, got 3$"),
        ({"dims": [1, "two"]}, r"^privacy\.dims\[1\]: expected an integer, got 'two'$"),
        ({"inner": 5}, r"^privacy\.inner: expected a mapping, got 5$"),
        ({"inner": {"k": "x"}}, r"^privacy\.inner\.k: expected an integer, got 'x'$"),
        ({"inner": {"enabled": "yes"}}, r"^privacy\.inner\.enabled: expected true or false, got 'yes'$"),
        ({"maybe_inner": 5}, r"^privacy\.maybe_inner: expected a mapping or null, got 5$"),
        ({"q": 0}, r"^privacy\.q: must be >= 1, got 0$"),  # __post_init__ range check, path prefixed
    ],
)
def test_ill_typed_values_name_the_key_and_the_expected_type(mapping, message):
    with pytest.raises(ConfigError, match=message):
        parse_section(_Outer, mapping, path="privacy")


def test_values_are_converted_and_defaults_filled():
    parsed = parse_section(_Outer, {"rate": 1, "dims": [3, 4], "inner": {"k": 2}}, path="x")
    assert parsed == _Outer(rate=1.0, dims=(3, 4), inner=_Inner(k=2))
    assert isinstance(parsed.rate, float)
    assert parse_section(_Outer, None, path="x") == _Outer()
    assert section_to_dict(parsed) == {
        "q": 100, "rate": 1.0, "name": None, "dims": [3, 4], "inner": {"k": 2, "enabled": True},
        "maybe_inner": None, "free": {},
    }


@pytest.mark.parametrize(
    "typed, expected",
    [("false", False), ("FALSE", False), ("False", False), ("true", True), ("True", True)],
)
def test_command_line_true_false_mean_what_they_say_for_bool(typed, expected):
    assert parse_section(_Inner, {"enabled": typed}, path="p").enabled is expected


@pytest.mark.parametrize("typed", ["null", "NULL", "None", "none"])
def test_command_line_null_means_none_for_optional_fields_only(typed):
    assert parse_section(_Outer, {"name": typed}, path="p").name is None
    assert parse_section(_Outer, {"maybe_inner": typed}, path="p").maybe_inner is None
    with pytest.raises(ConfigError, match=rf"^p\.q: expected an integer, got '{typed}'$"):
        parse_section(_Outer, {"q": typed}, path="p")  # not optional: 'null' is refused, not a default
    with pytest.raises(ConfigError, match=r"^p\.inner: expected a mapping"):
        parse_section(_Outer, {"inner": typed}, path="p")


def test_bool_strings_are_not_accepted_where_a_string_is_expected_to_stay_a_string():
    assert coerce_value("false", str, "name") == "false"  # a str field keeps the text
    assert coerce_value("true", str | None, "name") == "true"
    with pytest.raises(ConfigError, match=r"^flag: expected true or false, got 1$"):
        coerce_value(1, bool, "flag")


def test_required_keys_are_named():
    @dataclass(frozen=True)
    class Needs:
        samples_per_class: int
        k: int = 5

    with pytest.raises(ConfigError, match=r"^empirical_epsilon\.samples_per_class: required key is missing$"):
        parse_section(Needs, {"k": 3}, path="empirical_epsilon")


def test_unknown_key_message_at_the_top_level_has_no_dot():
    assert unknown_key_message("", "batch_szie", ["steps", "batch_size"]) == (
        "batch_szie: unknown key; did you mean 'batch_size'?"
    )


def _workflow(output_dir: str, *, batch_size: int = 32, progress: bool = True, dp: Mapping[str, Any] | None = None,
              inner: Mapping[str, Any] | None = None):
    return {"output_dir": output_dir, "batch_size": batch_size, "progress": progress, "dp": dp, "inner": inner}


def test_parse_arguments_uses_the_function_annotations():
    assert parse_arguments(_workflow, {"progress": "false", "dp": "null"}) == {"progress": False, "dp": None}
    with pytest.raises(ConfigError, match=r"^batch_size: expected an integer, got 'eight'$"):
        parse_arguments(_workflow, {"batch_size": "eight"})


_CALLS: list[dict[str, Any]] = []


@strict_arguments(sections={"inner": _Inner})
def _checked_workflow(output_dir: str, *, batch_size: int = 32, progress: bool = True,
                      dp: Mapping[str, Any] | None = None, inner: Mapping[str, Any] | None = None):
    arguments = {"output_dir": output_dir, "batch_size": batch_size, "progress": progress, "dp": dp, "inner": inner}
    _CALLS.append(arguments)
    return arguments


def test_strict_arguments_checks_arguments_and_sections_before_the_body():
    assert _checked_workflow("out", progress="FALSE", dp="null", inner={"k": 7}) == {
        "output_dir": "out", "batch_size": 32, "progress": False, "dp": None, "inner": {"k": 7, "enabled": True}
    }
    assert _checked_workflow("out")["inner"] == {"k": 5, "enabled": True}  # a section left out: its defaults
    for arguments, message in (
        ({"batch_szie": 8}, r"^batch_szie: unknown key; did you mean 'batch_size'\?$"),
        ({"batch_size": "eight"}, r"^batch_size: expected an integer, got 'eight'$"),
        ({"progress": "maybe"}, r"^progress: expected true or false, got 'maybe'$"),
        ({"inner": {"kk": 1}}, r"^inner\.kk: unknown key; did you mean 'k'\?$"),
    ):
        before = len(_CALLS)
        with pytest.raises(ConfigError, match=message):
            _checked_workflow("out", **arguments)
        assert len(_CALLS) == before  # refused before the body ran


def test_strict_arguments_refuses_a_section_the_function_does_not_take():
    with pytest.raises(TypeError, match="no argument 'privacy'"):
        strict_arguments(_workflow, sections={"privacy": _Inner})
