"""The README's "Python API" block runs as shown: a sweep, one trial and an evaluation driven from Python, on a real
local Ray cluster (CPU), each leaving what the commands leave."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_python_block() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_api_example_runs_as_shown(tmp_path, glyph_cache):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    cache = tmp_path / "cache"
    shutil.copytree(glyph_cache, cache)  # the generated glyph set: the example decodes its own sizes into it
    env = dict(os.environ, NEGMARGIN_CACHE=str(cache), PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, "-c", readme_python_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    experiment = tmp_path / "experiments" / "python-api"
    promotion = json.loads((experiment / "promotion.json").read_text())
    assert [trial["rank"] for trial in promotion["trials"]] == [1]  # promotion.top_k: 1
    assert (experiment / "report.md").is_file() and "Selected" in out, out
    selected = re.findall(r"^([15]) \{.*'margin': (-?[0-9.e-]+).*\} ([0-9.]+) ([0-9.]+)$", out, re.M)
    assert sorted(shot for shot, *_ in selected) == ["1", "5"], out
    assert all(-0.5 <= float(margin) <= 0.2 for _, margin, _, _ in selected)  # the default's margin range
    summary = json.loads((tmp_path / "runs" / "python-api" / "summary.json").read_text())
    assert summary["final_metrics"]["epoch"] == 2 and summary["best_checkpoint"]
    shots = re.findall(r"^([15])-shot: ([0-9.]+) ± ([0-9.]+) %$", out, re.M)
    assert [shot for shot, _, _ in shots] == ["1", "5"]
    assert all(20.0 < float(accuracy) <= 100.0 and 0.0 < float(ci) < 5.0 for _, accuracy, ci in shots)
