"""Strict parsing of plain config mappings (bundle YAML, command-line overrides) into typed dataclasses.

    parse_section(PrivacySection, {"qq": 5}, path="privacy")
    -> ConfigError: privacy.qq: unknown key; did you mean 'q'?
    parse_section(SpeedSection, {"count": "eight"}, path="speed")
    -> ConfigError: speed.count: expected an integer, got 'eight'

Rules, the same at every level of nesting:

- A key that is not a field of the section's dataclass is refused, naming its full path and the closest
  valid key (``difflib.get_close_matches``), or every valid key when none is close.
- A value must have the field's type. ``int`` fields take integers only (not ``True``, not ``'8'``,
  not ``8.0``); ``float`` fields take integers or floats; ``str`` fields take strings; tuples and lists
  take lists of the item type; a nested dataclass takes a mapping parsed by the same rules.
- The command line (MONAI's ``python -m monai.bundle run`` reads it with ``fire``) hands over ``false``,
  ``true`` and ``null`` as the strings ``'false'``, ``'true'``, ``'null'``. They mean what they say where the
  field's type allows it: ``'true'`` / ``'false'`` (any case) for ``bool`` fields, ``'null'`` / ``'none'``
  (any case) for optional fields. A string where a number is expected stays an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = [
    "ConfigError",
    "check_known_keys",
    "check_minimum",
    "coerce_value",
    "join_path",
    "parse_arguments",
    "parse_section",
    "section_to_dict",
    "strict_arguments",
    "unknown_key_message",
]

SectionT = TypeVar("SectionT")
F = TypeVar("F", bound=Callable[..., Any])

_TRUE_STRINGS = ("true",)
_FALSE_STRINGS = ("false",)
_NONE_STRINGS = ("null", "none")


class ConfigError(ValueError):
    """A config value or key a user wrote is wrong; the message starts with its key path."""


def join_path(path: str, key: Any) -> str:
    """``privacy`` + ``q`` -> ``privacy.q``; an empty path gives the key alone."""
    return f"{path}.{key}" if path else str(key)


def unknown_key_message(path: str, key: Any, valid: Sequence[str]) -> str:
    """``privacy.qq: unknown key; did you mean 'q'?`` (or the list of valid keys when none is close)."""
    where = join_path(path, key)
    close = difflib.get_close_matches(str(key), [str(name) for name in valid], n=1)
    if close:
        return f"{where}: unknown key; did you mean {close[0]!r}?"
    listed = ", ".join(repr(name) for name in valid) or "none"
    return f"{where}: unknown key; valid keys: {listed}"


def check_minimum(section: Any, *keys: str, minimum: int = 1) -> None:
    """ConfigError ``key: must be >= minimum`` for the first of ``keys`` of ``section`` below ``minimum``
    (None values pass: they mean "the default"); for ``__post_init__`` range checks."""
    for key in keys:
        value = getattr(section, key)
        if value is not None and value < minimum:
            raise ConfigError(f"{key}: must be >= {minimum}, got {value!r}")


def check_known_keys(mapping: Mapping[str, Any], valid: Sequence[str], path: str) -> None:
    """ConfigError for the first key of ``mapping`` (in its order) that is not in ``valid``."""
    for key in mapping:
        if key not in valid:
            raise ConfigError(unknown_key_message(path, key, valid))


@functools.cache
def _field_types(section: type) -> dict[str, Any]:
    return typing.get_type_hints(section)


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def coerce_value(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against the type ``hint`` (and converted: lists to tuples, ints to floats,
    the command-line strings of the module doc to bool / None); ConfigError naming ``path`` otherwise."""
    if hint is Any or hint is object:
        return value
    if hint is type(None):
        if value is None or (isinstance(value, str) and value.lower() in _NONE_STRINGS):
            return None
        raise ConfigError(f"{path}: expected null, got {_describe(value)}")
    if _is_union(hint):
        options = typing.get_args(hint)
        if type(None) in options and (value is None or (isinstance(value, str) and value.lower() in _NONE_STRINGS)):
            return None
        others = [option for option in options if option is not type(None)]
        for option in others:
            if _is_container(option) and _matches_container(value, option):
                return coerce_value(value, option, path)  # its own error names the inner key
        for option in others:
            try:
                return coerce_value(value, option, path)
            except ConfigError:
                continue
        names = " or ".join(_type_name(option) for option in options)
        raise ConfigError(f"{path}: expected {names}, got {_describe(value)}")
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value in choices and not (isinstance(value, bool) and not any(isinstance(c, bool) for c in choices)):
            return value
        raise ConfigError(f"{path}: expected one of {list(choices)}, got {_describe(value)}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE_STRINGS + _FALSE_STRINGS:
            return value.lower() in _TRUE_STRINGS
        raise ConfigError(f"{path}: expected true or false, got {_describe(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {_describe(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected a number, got {_describe(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {_describe(value)}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        return parse_section(hint, value, path=path)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {_describe(value)}")
        arguments = typing.get_args(hint)
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            if len(value) != len(arguments):
                raise ConfigError(f"{path}: expected a list of {len(arguments)} items, got {len(value)}: {list(value)}")
            items = [coerce_value(item, item_hint, f"{path}[{i}]") for i, (item, item_hint) in enumerate(zip(value, arguments))]
        else:
            item_hint = arguments[0] if arguments else Any
            items = [coerce_value(item, item_hint, f"{path}[{i}]") for i, item in enumerate(value)]
        return list(items) if origin is list or hint is list else tuple(items)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_describe(value)}")
        arguments = typing.get_args(hint)
        value_hint = arguments[1] if len(arguments) == 2 else Any
        return {key: coerce_value(item, value_hint, join_path(path, key)) for key, item in value.items()}
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise ConfigError(f"{path}: expected {_type_name(hint)}, got {_describe(value)}")
    raise TypeError(f"{path}: medsyn.config cannot check values of type {hint!r}")  # a bug in a section


def _is_container(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return dataclasses.is_dataclass(hint) or origin in (tuple, list, Sequence, dict, Mapping) or hint in (
        tuple, list, dict, Mapping)


def _matches_container(value: Any, hint: Any) -> bool:
    """Whether ``value`` is the kind of container ``hint`` asks for (then its inner errors are the news)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, (list, tuple))


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) in (dict, Mapping) or hint in (dict, Mapping):
        return "a mapping"
    if typing.get_origin(hint) in (tuple, list, Sequence):
        return "a list"
    return getattr(hint, "__name__", repr(hint))


def parse_section(section: type[SectionT], mapping: Mapping[str, Any] | None, *, path: str) -> SectionT:
    """``section`` (a dataclass) built from ``mapping``: unknown keys, ill-typed values and missing
    required keys raise ConfigError naming their path; keys left out take the dataclass defaults.

    path: where ``mapping`` sits in the config (``privacy``, ``privacy.empirical_epsilon``); "" at the top.
    Range checks (``> 0``, ...) are the section's ``__post_init__``; a ValueError it raises is re-raised as
    ConfigError prefixed with ``path`` unless it already names it.
    """
    if mapping is None:
        mapping = {}
    if isinstance(mapping, section):
        return mapping
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{path or section.__name__}: expected a mapping, got {_describe(mapping)}")
    fields = [field for field in dataclasses.fields(section) if field.init]  # type: ignore[arg-type]
    names = [field.name for field in fields]
    check_known_keys(mapping, names, path)
    hints = _field_types(section)
    values = {key: coerce_value(value, hints[key], join_path(path, key)) for key, value in mapping.items()}
    missing = [
        field.name
        for field in fields
        if field.name not in values
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{join_path(path, missing[0])}: required key is missing")
    try:
        return section(**values)
    except ValueError as error:  # ConfigError included: a range check of __post_init__
        message = str(error)
        if path and not message.startswith(path):
            # "q: must be >= 1" from __post_init__ -> "privacy.q: must be >= 1"
            names_a_field = any(message.startswith(f"{name}:") for name in names)
            message = f"{path}.{message}" if names_a_field else f"{path}: {message}"
        raise ConfigError(message) from error


def parse_arguments(function: Any, arguments: Mapping[str, Any], *, path: str = "") -> dict[str, Any]:
    """The keyword ``arguments`` of ``function`` checked against its annotations by the rules above
    (a workflow entry point checks its top-level config keys this way); returns them converted."""
    hints = typing.get_type_hints(function)
    return {key: coerce_value(value, hints[key], join_path(path, key)) if key in hints else value
            for key, value in arguments.items()}


def strict_arguments(
    function: F | None = None, *, sections: Mapping[str, type | Callable[[Any, str], Any]] | None = None
) -> Any:
    """Decorator of a workflow entry point: check every argument before the body (and any decorator
    below it) runs, so a bad bundle config fails before any work and before any file is written.

        @strict_arguments(sections={"privacy": AssessmentPrivacy, "synthetic_sets": parse_synthetic_sets})
        def run_assessment(output_dir: str, *, privacy: Mapping[str, Any] | None = None, ...): ...

    - Every argument is checked against the function's annotation (``parse_arguments``): ``batch_size='eight'``
      fails naming ``batch_size``; ``progress='false'`` from the command line means False. An argument the
      function does not take names the closest one. Top-level defaults stay in the signature.
    - ``sections``: argument name -> a section dataclass (the argument, None included, is parsed with
      ``parse_section`` at path = the argument name and handed to the body as a complete plain dict, every
      default filled in) or a function ``(value, path) -> parsed value``.
    """
    if function is None:
        return functools.partial(strict_arguments, sections=sections)
    signature = inspect.signature(function)
    if any(p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        raise TypeError(f"strict_arguments: {function.__name__} must take named arguments only")
    parsers: dict[str, Callable[[Any, str], Any]] = {}
    for name, parser in dict(sections or {}).items():
        if name not in signature.parameters:
            raise TypeError(f"strict_arguments: {function.__name__} has no argument {name!r}")
        if isinstance(parser, type) and dataclasses.is_dataclass(parser):
            parsers[name] = functools.partial(_parse_section_to_dict, parser)
        else:
            parsers[name] = parser  # type: ignore[assignment]

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:  # an argument the function does not take, or a missing one
            names = list(signature.parameters)
            unknown = [key for key in kwargs if key not in names]
            if unknown:
                raise ConfigError(unknown_key_message("", unknown[0], names)) from error
            raise ConfigError(f"{function.__name__}: {error}") from error
        bound.apply_defaults()
        converted = parse_arguments(function, bound.arguments)
        for name, parser in parsers.items():
            converted[name] = parser(converted[name], name)
        return function(**converted)

    return checked


def _parse_section_to_dict(section: type, value: Any, path: str) -> dict[str, Any]:
    return section_to_dict(parse_section(section, value, path=path))


def section_to_dict(section: Any) -> dict[str, Any]:
    """A section as plain JSON data (nested sections as dicts, tuples as lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, Mapping):
            return {key: plain(item) for key, item in value.items()}
        return value

    return plain(section)
