"""The `negmargin` command starts light: its parser, `sweep list` and a spec mistake load neither torch nor Ray."""

import subprocess
import sys

PROBE = """
import sys
from sweep.cli import build_parser, main
build_parser().format_help()
code = main(sys.argv[1:])
print("loaded:", ",".join(name for name in ("torch", "ray") if name in sys.modules))
raise SystemExit(code)
"""


def _negmargin(*argv: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_listing_presets_loads_neither_torch_nor_ray(tmp_path):
    result = _negmargin("sweep", "list", "--storage", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and "default" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_spec_mistake_is_reported_before_torch_or_ray_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncolour: red\n")
    result = _negmargin("sweep", "run", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("negmargin: error: ")
    assert result.stdout.strip().splitlines()[-1] == "loaded:"
    uri = _negmargin("sweep", "run", "--storage", "s3://bucket/experiments", cwd=tmp_path)
    assert uri.returncode == 2 and "--storage" in uri.stderr
    assert uri.stdout.strip().splitlines()[-1] == "loaded:"


def test_the_lazy_exports_of_data_all_resolve_and_no_submodule_shadows_one():
    import pkgutil

    import data

    assert {info.name for info in pkgutil.iter_modules(data.__path__)}.isdisjoint(data.__all__)
    assert all(getattr(data, name).__name__ == name for name in data.__all__)
