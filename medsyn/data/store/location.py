"""Where image stores live, and the name of each store's folder.

The cache folder is, first found: the ``cache_dir`` argument; the ``MEDSYN_CACHE_DIR`` environment
variable; ``$XDG_CACHE_HOME/medsyn/stores`` (when XDG_CACHE_HOME is an absolute path, as the XDG base
directory specification requires); ``~/.cache/medsyn/stores``.

Each store gets its own folder in it, ``<kind>-<32 hex digits>``: the digits are the first 128 bits of the
store key, the sha256 of the canonical JSON of (source kind, resolved source root, build options,
requested dtype). Different sources or options therefore never share a folder, and nothing of the source
root can be read back from the name. The store format is not part of the key: a newer medsyn rebuilds an
older store in its own folder instead of leaving it behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.data.store.build_options import canonical_json

__all__ = ["CACHE_ENV", "check_kind", "resolve_cache_dir", "store_folder_name", "store_key"]

CACHE_ENV = "MEDSYN_CACHE_DIR"
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_NAME_DIGITS = 32


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds the stores (module doc); it need not exist yet."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from_env = os.environ.get(CACHE_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "medsyn" / "stores"


def check_kind(kind: str) -> str:
    """``kind`` names the reader ("image_folder"); it starts the folder name, so: lower-case letters,
    digits and underscores, at most 40 (ValueError naming the argument otherwise)."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(
            f"kind must name the source reader in lower-case letters, digits and underscores "
            f"(at most 40, starting with a letter), got {kind!r}"
        )
    return kind


def store_key(*, kind: str, root: str | os.PathLike, options: Mapping[str, Any], dtype: str) -> str:
    """Hex sha256 identifying a store (module doc); ``options`` must already be canonical."""
    identity = {
        "kind": check_kind(kind),
        "root": str(Path(root).resolve()),
        "options": options,
        "dtype": dtype,
    }
    return hashlib.sha256(canonical_json(identity).encode("ascii")).hexdigest()


def store_folder_name(kind: str, key: str) -> str:
    return f"{check_kind(kind)}-{key[:_NAME_DIGITS]}"
