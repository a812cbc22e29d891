"""The installed commands (pyproject.toml's [project.scripts]) and their config lookup."""

import ast
import os
import subprocess
import sys
import tomllib

from inpaint_tiny import REPO

import configs


def test_every_command_names_a_launchers_cli():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    launchers = {
        name.removesuffix(".py")
        for name in os.listdir(os.path.join(REPO, "launch"))
        if name.endswith(".py") and name not in ("__init__.py", "demo.py")
    }
    assert {target.split(":")[0] for target in scripts.values()} == {
        f"launch.{name}" for name in launchers
    }
    for command, target in scripts.items():
        module, function = target.split(":")
        assert command == "jaxinpaint-" + module.removeprefix("launch.").replace("_", "-")
        path = os.path.join(REPO, *module.split(".")) + ".py"
        with open(path) as f:
            tree = ast.parse(f.read())
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, path


def test_config_paths_fall_back_to_the_installed_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a checkout: no configs/ here
    own = os.path.join(os.path.dirname(configs.__file__), "demo.py")
    argv = ["x", "--config=configs/demo.py:arg", "--config", "full.py", "--config.seed=3"]
    assert configs.locate_in_argv(argv) == [
        "x",
        f"--config={own}:arg",
        "--config",
        own.replace("demo.py", "full.py"),
        "--config.seed=3",
    ]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.py").write_text("")  # a user's own file wins
    assert configs.locate("configs/demo.py") == "configs/demo.py"
    assert configs.locate("configs/nosuch.py") == "configs/nosuch.py"  # left to the loader


def test_installed_command_runs_outside_a_checkout(tmp_path):
    """The config is found by name outside a checkout; a misspelt override is one line."""
    command = os.path.join(os.path.dirname(sys.executable), "jaxinpaint-train")
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [command, "--config=configs/demo.py", "--config.no_such_field=1", f"--workdir={workdir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in log, log
    assert "error: a --config override cannot be applied" in log and "no_such_field" in log, log
    assert not workdir.exists()
