import json
import subprocess
import sys

import numpy as np
from PIL import Image

from medsyn.data.source_summary import summarize_source


def _folder(root):
    rng = np.random.default_rng(0)
    for name, count in (("a", 3), ("b", 2)):
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)).save(root / name / f"{index}.png")
    (root / "b" / "broken.png").write_bytes(b"not a png")


def test_summary_counts_and_skips(tmp_path):
    _folder(tmp_path / "d")
    summary = summarize_source("image_folder", path=str(tmp_path / "d"), channels=1, on_error="skip")
    assert summary["sets"]["all"]["class_counts"] == {"a": 3, "b": 2}
    assert summary["sets"]["all"]["image_shape"] == [1, 5, 5]
    assert summary["num_skipped"] == 1 and summary["skipped"][0]["file"].endswith("broken.png")
    json.dumps(summary)


def test_command_line(tmp_path):
    _folder(tmp_path / "d")
    result = subprocess.run(
        [sys.executable, "-m", "medsyn.data.source_summary", "image_folder", "--path", str(tmp_path / "d"),
         "--size", "4", "--on_error", "skip"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["sets"]["all"]["image_shape"] == [3, 4, 4] and summary["num_skipped"] == 1
    assert list(tmp_path.rglob("*.json")) == []  # writes nothing
