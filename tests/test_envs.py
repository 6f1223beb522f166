"""Conda: environment.yml (the whole workflow) and workflow/envs/fewlabels.yaml (what the
rules run in with --use-conda / --sdm conda) pin the same packages as pyproject.toml, and
every rule that runs code names that environment. No environment is created here."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)$")
# The rules themselves never import Snakemake or its plugins.
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}


def pins(specs) -> dict[str, str]:
    out = {}
    for s in specs:
        m = PIN.match(s.strip())
        assert m, f"{s!r} is not pinned as name==version"
        out[m.group(1).lower()] = m.group(2)
    return out


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pip_section(path) -> tuple[list, list]:
    env = yaml.safe_load(path.read_text())
    assert env["channels"][0] == "conda-forge"
    deps = env["dependencies"]
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, f"{path}: one pip: section expected"
    conda = [d for d in deps if isinstance(d, str)]
    assert "pip" in conda
    return conda, pip[0]


def python_ok(conda: list[str]) -> None:
    (py,) = [d for d in conda if d.startswith("python")]
    version = tuple(int(x) for x in py.split("=")[-1].split("."))
    lowest = tuple(int(x) for x in pyproject()["requires-python"].lstrip(">=").split("."))
    assert version >= lowest


def test_pyproject_pins_every_dependency():
    deps = pins(pyproject()["dependencies"])
    assert {"torch", "numpy", "pandas", "snakemake", "snakemake-executor-plugin-slurm"} <= set(deps)
    pins(pyproject()["optional-dependencies"]["test"])


def test_environment_yml_matches_pyproject():
    conda, pip = pip_section(REPO / "environment.yml")
    python_ok(conda)
    want = pins(pyproject()["dependencies"]) | pins(pyproject()["optional-dependencies"]["test"])
    assert pins(p for p in pip if not p.startswith("-e")) == want
    assert "-e ." in pip  # the package itself, from this checkout


def test_rule_environment_matches_pyproject():
    conda, pip = pip_section(REPO / "workflow" / "envs" / "fewlabels.yaml")
    python_ok(conda)
    want = {k: v for k, v in pins(pyproject()["dependencies"]).items() if k not in WORKFLOW_ONLY}
    assert pins(pip) == want


def rule_blocks():
    """(file, rule name, body) of every rule in the workflow's .smk files and the Snakefile."""
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        text = path.read_text()
        starts = [(m.start(), m.group(2), len(m.group(1))) for m in re.finditer(r"^( *)rule (\w+):", text, re.M)]
        for i, (start, name, indent) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            # the body ends at the first non-blank line indented no deeper than `rule`
            body = []
            for line in text[start:end].splitlines()[1:]:
                if line.strip() and len(line) - len(line.lstrip()) <= indent:
                    break
                body.append(line)
            yield path.name, name, "\n".join(body)


def test_every_rule_that_runs_code_has_a_conda_env():
    blocks = list(rule_blocks())
    assert {"train", "pretrain", "aggregate", "paper", "restore", "archive"} <= {n for _, n, _ in blocks}
    missing = [f"{f}:{n}" for f, n, body in blocks
               if re.search(r"^\s+(shell|script|notebook|wrapper):", body, re.M)
               and not re.search(r"^\s+conda:", body, re.M)]
    assert not missing, f"rules without conda: {missing}"
    runs = [f"{f}:{n}" for f, n, body in blocks if re.search(r"^\s+run:", body, re.M)]
    assert not runs, f"run: blocks cannot use a conda env; call the package from shell: instead ({runs})"


@pytest.mark.parametrize("path", ["environment.yml", "workflow/envs/fewlabels.yaml"])
def test_env_files_parse(path):
    env = yaml.safe_load((REPO / path).read_text())
    assert isinstance(env, dict) and env["dependencies"]
