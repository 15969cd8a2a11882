"""An interrupted build (an exception, a kill) never leaves a store that looks complete, and the next
build succeeds and removes what was left; one build at a time holds a store's lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from medsyn.data.store import StoreBusyError, open_store
from medsyn.data.store.build_lock import store_build_lock
from medsyn.data.store.manifest import MANIFEST_NAME


def _entries(cache):
    return sorted(os.listdir(cache))


def test_exception_mid_build_leaves_no_store_and_no_temporary_folder(source):
    def failing(index):
        if index == 5:  # in the second chunk of 4: the first chunk is already on disk
            raise RuntimeError("decoder crashed")
        return source.decode(index)

    with pytest.raises(RuntimeError, match="decoder crashed"):
        source.build(decode=failing)
    assert [name for name in _entries(source.cache) if not name.endswith(".medsyn-lock")] == []
    build = source.build()
    assert not build.reused and build.reason == "new store" and len(build.store) == 10


def test_exception_during_a_rebuild_keeps_the_old_store_and_the_next_build_rebuilds(source):
    first = source.build()
    source.rewrite(0, np.zeros((3, 16, 16), dtype=np.uint8))

    def failing(index):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        source.build(decode=failing)
    assert open_store(first.store.path).manifest.build_id == first.store.manifest.build_id
    assert not any(".medsyn-build-" in name for name in _entries(source.cache))
    rebuilt = source.build()
    assert not rebuilt.reused and rebuilt.changes.new_or_changed == ("benign/img_000.npy",)


KILLED_BUILD = """
import json, os, signal, sys
import numpy as np
from medsyn.data.store import build_store

files, labels, root, cache = json.loads(sys.argv[1])

def decode(index):
    if index == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    return np.load(files[index]).astype(np.float32) / 255

build_store(kind="fake_folder", root=root, files=files, labels=labels, class_names=["benign", "malignant"],
            image_shape=(3, 16, 16), decode=decode, options={"size": 16, "channels": 3}, cache_dir=cache,
            chunk_size=4)
"""


def test_killed_build_leaves_only_a_temporary_folder_that_the_next_build_removes(source):
    arguments = json.dumps([[str(f) for f in source.files], source.labels, str(source.root), str(source.cache)])
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", KILLED_BUILD, arguments], env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    leftovers = [name for name in _entries(source.cache) if ".medsyn-build-" in name]
    assert len(leftovers) == 1 and leftovers[0].startswith(".fake_folder-")
    assert not (source.cache / leftovers[0] / MANIFEST_NAME).exists()
    assert not any(name.startswith("fake_folder-") for name in _entries(source.cache))  # no store looks complete

    build = source.build()
    assert not build.reused and len(build.store) == 10
    assert not any(".medsyn-build-" in name for name in _entries(source.cache))


def test_a_build_while_another_holds_the_lock_fails_after_lock_timeout(source):
    store = source.build().store.path
    source.decode_calls = 0
    with store_build_lock(source.cache / f".{store.name}.medsyn-lock", timeout=0, store=store):
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match=f"image store {store} is being built by another process"):
            source.build(lock_timeout=0.2)
        assert time.monotonic() - started >= 0.2
    assert source.decode_calls == 0
    assert source.build(lock_timeout=0).reused


def test_a_second_build_waits_for_the_first_and_reuses_what_it_built(source):
    started, release = threading.Event(), threading.Event()

    def slow(index):
        if index == 0:
            started.set()
            release.wait(30)
        return source.decode(index)

    results = {}
    first = threading.Thread(target=lambda: results.update(first=source.build(decode=slow)))
    second = threading.Thread(target=lambda: results.update(second=source.build()))
    first.start()
    assert started.wait(30)
    second.start()
    time.sleep(0.3)
    assert second.is_alive() and "second" not in results  # waiting for the lock
    release.set()
    first.join(30)
    second.join(30)
    assert not results["first"].reused and results["second"].reused
    assert source.decode_calls == 10
