"""Import boundaries (shared/DESIGN.md, Boundaries).

Torch stays out of jaxinpaint/, jax out of detector/, neither in data_pipeline/; serve/ imports
none of them (nor tensorflow), and of jaxinpaint/ only the NumPy/OpenCV modules (LIGHT), which
import none of them either; detector/ and jaxinpaint/ never import each other (launch/ wires
them).
Reads imports with ast; prints each breach as FILE: imports X; exits 1 on any."""

import ast
import pathlib
import sys

FORBIDDEN = {  # package dir -> top-level modules it must never import
    "jaxinpaint": {"torch", "torchvision", "detector"},
    "detector": {"jax", "jaxlib", "flax", "optax", "orbax", "jaxinpaint"},
    "data_pipeline": {"torch", "torchvision", "jax", "flax", "optax", "detector", "jaxinpaint"},
    # Serving runs where only onnxruntime, OpenCV and NumPy are installed.
    "serve": {
        "torch",
        "torchvision",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "orbax",
        "tensorflow",
        "detector",
        "jaxinpaint",
        "launch",
    },
}


# jaxinpaint's modules that reconstruct photos without JAX: the web server (serve/web.py) runs
# them on the exported models.
LIGHT = (
    "jaxinpaint.reconstruct",
    "jaxinpaint.records",
    "jaxinpaint.samples",
    "jaxinpaint.fills",
    "jaxinpaint.photo_files",
)


def imported(path):
    """The modules `path` imports, by their full dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def breaches_of(path, banned):
    for module in sorted(set(imported(path))):
        if module.split(".")[0] in banned and not (banned is SERVE and module in LIGHT):
            yield f"{path}: imports {module}"


SERVE = FORBIDDEN["serve"]
breaches, files = [], 0
for pkg, banned in FORBIDDEN.items():
    for path in sorted(pathlib.Path(pkg).rglob("*.py")):
        files += 1
        breaches.extend(breaches_of(path, banned))
for module in LIGHT:  # what serve/ may import must itself be as light
    path = pathlib.Path(*module.split(".")).with_suffix(".py")
    files += 1
    breaches.extend(breaches_of(path, SERVE))
print("\n".join(breaches))
print(f"boundaries: {files} files read, {len(breaches)} breaches")
sys.exit(1 if breaches or files == 0 else 0)
