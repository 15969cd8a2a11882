"""requirements.lock agrees with requirements.txt and the Makefile, and holds every transitive dependency.

`make install` installs requirements.txt with ``--constraint requirements.lock``; `make lock` rewrites the lock
from a fresh resolution. These tests fail when one file was changed without the other.
"""

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
REQUIREMENTS = ROOT / "requirements.txt"
MAKEFILE = ROOT / "Makefile"


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def parse_lock(text: str) -> dict[str, Version]:
    """canonical name -> exact version; ValueError for a line that is not ``name==version`` or a duplicate."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or requirement.extras or requirement.marker:
            raise ValueError(f"requirements.lock: {line!r} is not an exact pin name==version")
        name = canonicalize_name(requirement.name)
        if name in pins:
            raise ValueError(f"requirements.lock: {requirement.name} is pinned twice")
        pins[name] = Version(specifiers[0].version)
    return pins


def _no_deps_pins() -> list[Requirement]:
    match = re.search(r"^NO_DEPS\s*:=\s*(.+)$", MAKEFILE.read_text(), re.MULTILINE)
    assert match, "Makefile: no NO_DEPS := ... line (the packages installed with --no-deps)"
    return [Requirement(item) for item in match.group(1).split()]


@pytest.fixture(scope="module")
def lock() -> dict[str, Version]:
    return parse_lock(LOCK.read_text())


def test_parse_lock_refuses_duplicates_and_ranges():
    assert parse_lock("# header\nnumpy==2.4.6\nTorch==2.13.0+cpu\n") == {
        "numpy": Version("2.4.6"), "torch": Version("2.13.0+cpu")}
    with pytest.raises(ValueError, match="pinned twice"):
        parse_lock("Pillow==13.0.0\npillow==13.0.0\n")
    with pytest.raises(ValueError, match="exact pin"):
        parse_lock("numpy>=2\n")


def test_every_direct_requirement_is_pinned_and_satisfied(lock):
    # the torch the Makefile installs first is a direct requirement as well
    direct = [Requirement(line) for line in _requirement_lines(REQUIREMENTS)] + [Requirement("torch==2.13.0")]
    for requirement in direct:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"requirements.txt names {requirement.name}, requirements.lock does not: run `make lock`"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"requirements.txt wants {requirement}, requirements.lock pins {lock[name]}: run `make lock`")


def test_makefile_installs_with_the_lock_and_its_no_deps_pins_agree(lock):
    makefile = MAKEFILE.read_text()
    assert re.search(r"^LOCK\s*:=\s*requirements\.lock$", makefile, re.MULTILINE)
    assert "$(call install_dependencies,$(PIP),--constraint $(LOCK))" in makefile
    for requirement in _no_deps_pins():
        name = canonicalize_name(requirement.name)
        assert name in lock and requirement.specifier.contains(lock[name]), (
            f"Makefile installs {requirement} --no-deps, requirements.lock pins {lock.get(name)}")


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins(lock):
    """Every locked package is installed at its locked version (make install) and every dependency it
    declares (markers of this interpreter) is locked at a version that satisfies it: nothing transitive is
    left to the resolver. The --no-deps packages' own dependencies are deliberately not installed."""
    no_deps = {canonicalize_name(requirement.name) for requirement in _no_deps_pins()}
    environment = {**default_environment(), "extra": ""}
    for name, version in lock.items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name}=={version} is locked but not installed: run `make install`")
        assert installed == version, f"{name}: {installed} installed, {version} locked: run `make install`"
        if name in no_deps:
            continue
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            dependency = canonicalize_name(requirement.name)
            assert dependency in lock, f"{name} needs {requirement}, which requirements.lock does not pin"
            assert requirement.specifier.contains(lock[dependency], prereleases=True), (
                f"{name} needs {requirement}, requirements.lock pins {lock[dependency]}")
