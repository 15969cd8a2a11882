import subprocess
import sys

import medsyn.data as data


def test_public_names_resolve_to_callables_not_modules():
    for name in data.__all__:
        value = getattr(data, name)
        assert callable(value), name
    # after the submodules are imported, the names still resolve to the functions
    from medsyn.data import export_dicom, load_source, prepare_splits  # noqa: F401

    assert callable(data.load_source) and data.load_source.__name__ == "load_source"


def test_import_is_light():
    code = "import sys, medsyn.data; print(any(m in sys.modules for m in ('pydicom', 'nibabel', 'PIL')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
