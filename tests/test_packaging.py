"""The presets ship inside the wheel, and a pipeline runs from a folder outside the repository."""

import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.conftest import PENGUINS, ROOT


def test_wheel_contains_the_presets(tmp_path):
    # Setup: a copy of the project, so the build leaves nothing in the work tree
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "out", "*.egg-info", "__pycache__", ".pytest_cache"))

    # Run
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
    )

    # Assert
    (wheel,) = (tmp_path / "dist").glob("synthaug-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in ("gates/default.yaml", "gates/strict_privacy.yaml", "gates/none.yaml", "trainers/fast.yaml", "generators/vae.yaml"):
        assert f"synthaug/config/presets/{preset}" in names, preset


@pytest.mark.parametrize("generator", ["vae_small", "rbm"])
def test_pipeline_runs_outside_the_repository(tmp_path, generator):
    # Setup: a project folder with no conf/ of its own, presets by name only
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PENGUINS, project / "penguins.csv")
    pipeline = {
        "name": "away",
        "source": {"path": "penguins.csv"},
        "generator": generator,  # a preset (vae_small) or just a registered family (rbm: no preset needed)
        "trainer": {"preset": "tiny", "max_epochs": 2},
        "gates": "none",
        "sample": {"n_rows": 50},
        "output": {"dir": "out/away"},
    }
    (project / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}

    # Run
    result = subprocess.run(
        [sys.executable, "-m", "synthaug.cli", "run", "pipeline.yaml", "-q"], cwd=project, env=env, capture_output=True, text=True
    )

    # Assert
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "away" / "manifest.json").is_file()
