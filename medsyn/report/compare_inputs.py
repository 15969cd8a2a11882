"""The inputs of a comparison over data sets (paper 000 Figs. 5-7): one medsyn ``results.json`` per data set,
each named by a data-set label the user chooses.

    entries = parse_compare_entries([{"label": "kvasir", "path": "runs/kvasir/results.json"}, ...])
    compared = read_compared_results(entries)   # [ComparedResults(label, path, results), ...]

``parse_compare_entries`` checks the config (a strict_arguments parser: a non-empty list of ``{label, path}``
with unique non-empty labels); ``read_compared_results`` checks the files (each exists, is JSON, is a medsyn
results document of schema version 2, ``medsyn.report.results``, and no file is named twice). Both only read:
a comparison checks everything before it writes its first byte. Files of schema version 1 (the quickstart's
``models``, the DP sweep's ``by_sigma`` layout) are refused with what to do: re-run the workflow, which writes
schema 2 (``scripts/compare_results.py`` checks that a re-run reproduced the old numbers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn.config.strict import ConfigError, check_known_keys
from medsyn.report.results import SCHEMA_VERSION, validate_results

__all__ = ["ComparedResults", "parse_compare_entries", "read_compared_results"]

_ENTRY_KEYS = ("label", "path")


@dataclass(frozen=True)
class ComparedResults:
    label: str  # the data set's name in every figure and table
    path: Path  # the results.json it was read from, as given
    results: Mapping[str, Any]  # a valid schema-2 results document


def parse_compare_entries(value: Any, path: str = "results") -> list[dict[str, str]]:
    """[results] of a comparison: a non-empty list of ``{"label": str, "path": str}`` with distinct labels (a
    ``strict_arguments`` parser); returns plain dicts. ConfigError naming ``results[i].key`` otherwise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(
            f"{path}: expected a non-empty list of {{label, path}} (one results.json per data set), got "
            f"{'an empty list' if isinstance(value, Sequence) and not value else repr(value)[:120]}; "
            f"e.g. --{path} \"[{{'label': 'kvasir', 'path': 'runs/kvasir/results.json'}}, ...]\""
        )
    entries: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping {{label, path}}, got {entry!r:.120}")
        check_known_keys(entry, _ENTRY_KEYS, where)
        for key in _ENTRY_KEYS:
            if key not in entry:
                raise ConfigError(f"{where}.{key}: missing; every entry names its data-set label and results.json path")
            if not isinstance(entry[key], (str, os.PathLike)) or not str(entry[key]).strip():
                raise ConfigError(f"{where}.{key}: expected a non-empty string, got {entry[key]!r}")
        label = str(entry["label"])
        if label in seen:
            raise ConfigError(f"{where}.label: {label!r} is already the label of {path}[{seen[label]}]; "
                              "every data set needs its own label")
        seen[label] = index
        entries.append({"label": label, "path": str(entry["path"])})
    return entries


def _old_layout(document: Mapping[str, Any]) -> str | None:
    if "schema_version" in document:
        return None
    if "models" in document:
        return "the schema-1 quickstart layout ('models')"
    if "by_sigma" in document:
        return "the schema-1 DP sweep layout ('by_sigma')"
    return None


def _read_one(entry: Mapping[str, str], where: str) -> ComparedResults:
    path = Path(entry["path"])
    if not path.exists():
        raise FileNotFoundError(f"{where}.path: {path} does not exist (expected the results.json of data set "
                                f"{entry['label']!r}, written by a medsyn assessment)")
    if not path.is_file():
        raise ValueError(f"{where}.path: {path} is not a file (expected a results.json)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{where}.path: {path} cannot be read as JSON ({error}); expected a medsyn results.json") from error
    if not isinstance(document, Mapping):
        raise ValueError(f"{where}.path: {path} holds a JSON {type(document).__name__}, not a medsyn results document")
    old = _old_layout(document)
    if old is not None:
        raise ValueError(f"{where}.path: {path} is a medsyn results file in {old}; compare reads schema version "
                         f"{SCHEMA_VERSION}: re-run its workflow to write schema {SCHEMA_VERSION}")
    try:
        validate_results(document)
    except ValueError as error:
        raise ValueError(f"{where}.path: {path} is not a medsyn results document of schema version "
                         f"{SCHEMA_VERSION}: {error}") from error
    return ComparedResults(label=entry["label"], path=path, results=document)


def read_compared_results(entries: Sequence[Mapping[str, str]], *, path: str = "results") -> list[ComparedResults]:
    """Read and check every results file of ``entries`` (from :func:`parse_compare_entries`), in order.

    FileNotFoundError / ValueError name ``results[i].path``, the file and what was expected; two entries naming
    the same file are refused (the data set would count twice).
    """
    compared: list[ComparedResults] = []
    files: dict[Path, int] = {}
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        item = _read_one(entry, where)
        resolved = item.path.resolve()
        if resolved in files:
            raise ValueError(f"{where}.path: {item.path} is the file of {path}[{files[resolved]}] too; each data "
                             "set needs its own results.json")
        files[resolved] = index
        compared.append(item)
    return compared
