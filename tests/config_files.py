"""The repository's root, and its configs by name (the `configs` package), for tests."""

from pathlib import Path

import configs

REPO = Path(__file__).resolve().parents[1]


def load_config(name: str):
    """`configs/<name>.py`'s get_config()."""
    return configs.get(name)
