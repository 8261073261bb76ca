"""What the installed package promises: the compiled engine, its C API files and type stubs."""

import importlib.util
import os
import pathlib
from importlib.resources import files

import pytest

import obcore


def test_compiled_engine_is_what_imports():
    assert obcore.__impl__ == "cython"
    for name in ("obcore.book", "obcore.side", *(f"obcore.{k}" for k in obcore.kinds())):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin.endswith((".so", ".pyd")), (name, spec)


def test_ships_pxd_stubs_and_py_typed():
    root = os.path.dirname(obcore.__file__)
    files = set(os.listdir(root))
    assert {"book.pxd", "side.pxd", "book.pyi", "py.typed"} <= files
    for kind in obcore.kinds():
        assert any(f.startswith(kind) and f.endswith(".pxd") for f in files), kind


def test_errors_share_one_base():
    for name in obcore.__all__:
        obj = getattr(obcore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, obcore.ObcoreError), name


def test_mmbot_default_config_is_installed():
    assert files("mmbot").joinpath("default.toml").is_file()


def test_installed_wheel_ships_no_sources():
    root = pathlib.Path(obcore.__file__).parent
    if (root.parent.parent / "setup.py").exists():
        pytest.skip("running from a source checkout (editable install)")
    leaked = sorted(p.name for p in root.iterdir() if p.suffix in (".c", ".pyx", ".h", ".html"))
    assert leaked == []
