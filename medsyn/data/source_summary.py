"""Check a data source before a run: what would be loaded, per class, and what would be skipped.

    python -m medsyn.data.source_summary dicom_folder --path scans/ --labels_csv scans/labels.csv --size 64
    python -m medsyn.data.source_summary image_folder --path kvasir/ --size 64 --on_error skip

Prints a JSON summary (item count, image shape, class names and counts, value range, split groups and what
they are, e.g. 12 "PatientID" groups, skipped files) and writes nothing. The same options go into a bundle config's ``data.options``.
"""

from __future__ import annotations

import json
from typing import Any

from medsyn.data.image_set import ImageSet
from medsyn.data.sources import read_source
from medsyn.data.stored_images import image_batches

__all__ = ["summarize_source"]

_SUMMARY_BATCH = 1024


def _describe(image_set: ImageSet) -> dict[str, Any]:
    low, high = float("inf"), float("-inf")
    for batch in image_batches(image_set.images, _SUMMARY_BATCH):  # stored images: one batch in memory
        low, high = min(low, float(batch.min())), max(high, float(batch.max()))
    return {
        "num_items": len(image_set),
        "image_shape": list(image_set.image_shape),
        "class_counts": dict(zip(image_set.class_names, image_set.class_counts())),
        "value_range": [low, high] if len(image_set) else None,
    }


def summarize_source(kind: str, **options: Any) -> dict[str, Any]:
    """Load source ``kind`` with ``options`` and describe it (see module doc)."""
    loaded = read_source(kind, **options)
    if loaded.has_official_splits:
        sets = {name: _describe(part) for name, part in loaded.sets.items()}  # type: ignore[union-attr]
        source = next(iter(loaded.sets.values())).source  # type: ignore[union-attr]
    else:
        sets = {"all": _describe(loaded.sets)}  # type: ignore[arg-type]
        source = loaded.sets.source  # type: ignore[union-attr]
    return {
        "kind": kind,
        "source": source,
        "options": {key: value if isinstance(value, (int, float, bool, type(None), list)) else str(value)
                    for key, value in options.items()},
        "sets": sets,
        "groups": len(set(loaded.groups)) if loaded.groups is not None else None,
        "group_key": loaded.group_key if loaded.groups is not None else "item",
        "group_fallbacks": dict(loaded.group_fallbacks),
        "num_skipped": len(loaded.skipped),
        "skipped": loaded.skipped,
    }


def main(kind: str, **options: Any) -> None:
    print(json.dumps(summarize_source(kind, **options), indent=2))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
