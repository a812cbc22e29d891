"""`configs/<name>.py` loaded by path, for tests of every package."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_config(name: str):
    """`configs/<name>.py`'s get_config()."""
    spec = importlib.util.spec_from_file_location(f"_cfg_{name}", REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
