"""pyproject.toml, environment.yml, README and .ci/run stay consistent."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_matches_pyproject():
    proj = pyproject()["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    torch_pin = next(d for d in proj["dependencies"] if d.startswith("torch=="))
    assert torch_pin in pip, "environment.yml must pin the same torch as pyproject.toml"
    editable = next(p for p in pip if p.startswith("-e ."))
    extras = set(re.search(r"\[(.*)\]", editable).group(1).split(","))
    assert extras <= set(proj["optional-dependencies"]), "environment.yml names an extra pyproject lacks"
    readme = (ROOT / "README.md").read_text()
    readme_extras = set(re.search(r'-e "\.\[([^\]]*)\]"', readme).group(1).split(","))
    assert extras == readme_extras, "README install command and environment.yml must install the same extras"
    assert proj["requires-python"].startswith(">=3.11")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Run the tests\s+```bash\n(.*?)\n```", readme, re.S).group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert block in ci, ".ci/run must call exactly the README's test command"


def test_every_extra_is_declared():
    extras = pyproject()["project"]["optional-dependencies"]
    for name in ("clip", "notebooks", "dev", "serve", "scale"):
        assert name in extras


def test_notebooks_are_committed_without_outputs():
    import json

    books = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(books) >= 3
    for nb in books:
        cells = json.loads(nb.read_text())["cells"]
        for c in cells:
            if c["cell_type"] == "code":
                assert not c.get("outputs") and c.get("execution_count") is None, f"{nb.name} has outputs"
            if c["cell_type"] == "code":
                assert "def " not in c["source"] and "class " not in c["source"], f"{nb.name} defines logic"
