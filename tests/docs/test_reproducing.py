"""docs/REPRODUCING.md lists every table and figure of both papers, and the config files it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAPERS = ROOT.parent / "shared" / "papers"
REPRODUCING = ROOT / "docs" / "REPRODUCING.md"
PAPER_FILES = {"000": "salme-beyond-the-generative-learning-trilemma.md",
               "001": "arroyo-galende-no-free-lunch-synthetic-images.txt"}


def captions(text: str) -> set[str]:
    """"Table N" / "Figure N" of every caption line ("Table 1: ...", "Figure 10: ...")."""
    return {f"{kind} {number}" for kind, number in re.findall(r"^(Table|Figure) (\d+):", text, flags=re.MULTILINE)}


def listed_items(text: str) -> set[str]:
    return set(re.findall(r"^\| (\d{3} (?:Table|Figure) \d+) \|", text, flags=re.MULTILINE))


@pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/papers is not beside the checkout")
@pytest.mark.parametrize("paper", sorted(PAPER_FILES))
def test_every_table_and_figure_of_the_paper_has_a_row(paper):
    found = captions((PAPERS / PAPER_FILES[paper]).read_text(encoding="utf-8"))
    assert len(found) >= 8  # the parser sees the captions
    listed = {item.split(" ", 1)[1] for item in listed_items(REPRODUCING.read_text(encoding="utf-8"))
              if item.startswith(paper)}
    assert found - listed == set(), f"paper {paper}: not in docs/REPRODUCING.md"
    assert listed - found == set(), f"paper {paper}: rows for items the paper does not have"


def test_the_config_files_it_names_exist():
    named = set(re.findall(r"bundles/[\w/]+\.(?:yaml|json)", REPRODUCING.read_text(encoding="utf-8")))
    assert named
    assert [path for path in sorted(named) if not (ROOT / path).is_file()] == []


def test_the_caption_parser_and_the_row_parser():
    assert captions("Table 1: a\nFigure 12: b\n see Figure 3: not a caption start\nFigure 3 c") == {"Table 1", "Figure 12"}
    assert listed_items("| 000 Table 2 | x |\n| 001 Figure 10 | y |\n|---|") == {"000 Table 2", "001 Figure 10"}
