"""Collect ``benchmarks/bench_*.py`` (pytest's default only collects ``test_*.py``), so that
``pytest benchmarks --benchmark-only`` (``make bench``) runs every benchmark file."""

from __future__ import annotations

import pytest


def pytest_collect_file(file_path, parent):
    # Files named on the command line are collected by pytest itself; only add the ones found in folders.
    is_benchmark = file_path.suffix == ".py" and file_path.name.startswith("bench_")
    if is_benchmark and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
