"""The project's configs, importable as a package (as big_vision's are): a derived config builds
on its base with `from configs import full`, and code that needs one by name calls `get(name)`.
The launchers still take any config file by path (`--config=configs/demo.py`, or a user's own).
"""

import importlib


def get(name: str, arg=None):
    """`configs/<name>.py`'s `get_config(arg)`."""
    return importlib.import_module(f"configs.{name}").get_config(arg)
