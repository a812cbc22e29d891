"""Lays the Beam environment over the main one: run by `make beam-env` with the Beam venv's
Python, after requirements-beam-lock.txt is installed into it.

    .venv-beam/bin/python tools/beam_env.py --behind=.venv

Writes a .pth file into this interpreter's site-packages that adds the main venv's site-packages
(with its own .pth files, such as the editable install of this checkout) after this venv's own:
TensorFlow, torch and the rest are installed once, and the pins of requirements-beam-lock.txt
(protobuf, pyarrow, pillow, apache-beam) come first. Then imports Beam and the pins from both
sides, so a broken environment fails here with the module's name, not in the middle of a test.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import sysconfig

PTH = "zz_jaxinpaint_main_venv.pth"  # "zz": read after this venv's own .pth files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behind", required=True, help="the main venv (the Makefile's VENV)")
    args = parser.parse_args()
    main_python = pathlib.Path(args.behind, "bin", "python")
    if not main_python.is_file():
        sys.exit(f"error: {main_python} not found; expected the main venv (make setup)")
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    main_site = subprocess.run(
        [str(main_python), "-c", query], check=True, capture_output=True, text=True
    ).stdout.strip()
    own_site = pathlib.Path(sysconfig.get_paths()["purelib"])
    own_site.joinpath(PTH).write_text(f"import site; site.addsitedir({main_site!r})\n")
    # what comes from each side, without TensorFlow's and torch's import time (the tests pay it)
    check = (
        "import apache_beam, google.protobuf, pyarrow, PIL, cv2, pycocotools, importlib.metadata "
        "as m; print('beam', apache_beam.__version__, 'protobuf', google.protobuf.__version__, "
        "'pillow', PIL.__version__, 'tensorflow', m.version('tensorflow_cpu'), 'torch', "
        "m.version('torch'))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", check], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
