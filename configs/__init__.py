"""The project's configs, importable as a package (as big_vision's are): a derived config builds
on its base with `from configs import full`, and code that needs one by name calls `get(name)`.
The launchers still take any config file by path (`--config=configs/demo.py`, or a user's own);
outside a checkout (the installed `jaxinpaint-train` command), `configs/<name>.py` is this
package's file of that name.
"""

import importlib
import os


def get(name: str, arg=None):
    """`configs/<name>.py`'s `get_config(arg)`."""
    return importlib.import_module(f"configs.{name}").get_config(arg)


def locate(spec: str) -> str:
    """A `--config` value (`PATH[:ARG]`) as given when PATH is a file, else, when this package
    has a file of PATH's name, that file (so `--config=configs/demo.py` works in any folder)."""
    path, sep, arg = spec.partition(":")
    if os.path.isfile(path):
        return spec
    own = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.path.basename(path))
    return own + sep + arg if path.endswith(".py") and os.path.isfile(own) else spec


def locate_in_argv(argv: list[str]) -> list[str]:
    """`argv` with its `--config=SPEC` or `--config SPEC` value passed through `locate`."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + locate(arg.removeprefix("--config="))
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = locate(out[i + 1])
    return out
