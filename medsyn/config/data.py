"""The [data] sections: a source of ``medsyn.data.sources`` by ``kind`` and its reader's ``options``.

    parse_section(AssessmentData, {"kind": "digits", "per_clas": 2}, path="data")
    -> ConfigError: data.per_clas: unknown key; did you mean 'per_class'?

``options`` are checked against the reader's own keyword parameters and annotations, so a new reader
(``register_source``) is checked without listing its options here.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medsyn.config.strict import ConfigError, check_known_keys, check_minimum, coerce_value, join_path

__all__ = ["AssessmentData", "DataSection", "QuickstartData", "parse_data_options"]


# --- data ----------------------------------------------------------------------------------------------------


def parse_data_options(kind: str, options: Mapping[str, Any] | None, *, path: str) -> dict[str, Any]:
    """``options`` of source ``kind`` checked against the reader's keyword parameters (``medsyn.data.sources``):
    an unknown option names the closest one; values are checked against the reader's annotations."""
    from medsyn.data.sources import SOURCES, source_names

    if kind not in SOURCES:
        close = difflib.get_close_matches(str(kind), source_names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known kinds: {source_names()}"
        raise ConfigError(f"{join_path(path.rpartition('.')[0], 'kind')}: unknown data source {kind!r}; {hint}")
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(options).__name__}")
    loader = SOURCES[kind]
    signature = inspect.signature(loader)
    parameters = {name: p for name, p in signature.parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        check_known_keys(options, list(parameters), path)
    target = loader.func if hasattr(loader, "func") else loader  # functools.partial of a reader
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation the reader's module cannot resolve: leave the value to the reader
        hints = {}
    checked = {}
    for key, value in options.items():
        hint = hints.get(key)
        if hint is None:
            checked[key] = value
            continue
        try:
            checked[key] = coerce_value(value, hint, join_path(path, key))
        except TypeError:  # a type medsyn.config cannot check (e.g. a path-like): the reader checks it
            checked[key] = value
    return checked


@dataclass(frozen=True)
class DataSection:
    """[data] of the generator bundles and the DP sweep: a source of ``medsyn.data.sources`` and its options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", parse_data_options(self.kind, self.options, path="data.options"))


@dataclass(frozen=True)
class QuickstartData(DataSection):
    """[data] of the quickstart: per_class is the scarcity subsample (k training images per class, null: all)."""

    per_class: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_minimum(self, "per_class")


@dataclass(frozen=True)
class AssessmentData(QuickstartData):
    """[data] of the assessment.

    split_seed: the one real split shared by every seed (so a generator's training members stay fixed).
    val_per_class / test_per_class: evaluate on the first k images per class (quick runs only; the papers
    evaluate on the whole validation and test splits).
    """

    split_seed: int = 0
    val_per_class: int | None = None
    test_per_class: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_minimum(self, "val_per_class", "test_per_class")
