"""The int8 generator of an export folder against its float teacher: quality on faces no training
saw, and latency per face.

    python bench/int8.py --exported=runs/demo/exported [--split=test] [--examples=96]

Examples: `--examples` composites of the `--split` faces at the model's size, made as
`launch/export.py` makes its check (`int8_examples`: the generated source of the inpainter's
config, the workdir the manifest names; split by person, so no test or validation face was
trained on). Scores as the evaluation's: hole PSNR (dB), LPIPS (VGG16), means over the examples.
Latency: median of --repeats one-face calls of each graph (onnxruntime, this machine's CPUs).
"""

import argparse
import json
import os
import platform
import sys

import numpy as np
from bench_common import RESULTS, ROOT, timed, write_json


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", required=True, help="folder written by launch/export.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=str(RESULTS / "int8.json"))
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from jaxinpaint.evaluation import metrics
    from jaxinpaint.evaluation.lpips import LPIPS
    from jaxinpaint.inference import load_config
    from launch.export import int8_examples
    from serve.runtime import ExportedInpainter, read_manifest

    manifest = read_manifest(args.exported)
    gen = manifest["generator"]
    if not gen.get("int8"):
        raise SystemExit(f"{args.exported} holds no int8 generator (launch/export.py --int8)")
    config = load_config(gen["source"]["workdir"])
    examples = int8_examples(config, args.split, args.examples)
    target = examples["original"].astype(np.float32) / 255.0
    hole = examples["mask"].astype(np.float32)
    face, face_hole = examples["occluded"][0], examples["mask"][0, ..., 0]
    lpips, rows = LPIPS(), {}
    for kind, name in (("float", gen["onnx"]), ("int8", gen["int8"]["onnx"])):
        model = ExportedInpainter(os.path.join(args.exported, name), gen["size"])
        out = np.concatenate(
            [
                model.inpaint_batch(examples["occluded"][i : i + 1], examples["mask"][i : i + 1])
                for i in range(args.examples)
            ]
        )
        rows[kind] = {
            "psnr_hole": float(np.mean(metrics.psnr(out, target, hole))),
            "lpips": float(np.mean(lpips(out, target))),
            "ms": timed(lambda m=model: m(face, face_hole), args.repeats),
        }
    print(
        f"model {gen['size']}x{gen['size']}, {args.examples} examples of the {args.split} faces, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'generator':<12}{'hole PSNR':>11}{'LPIPS':>9}{'ms/face':>9}")
    for kind, r in rows.items():
        print(f"{kind:<12}{r['psnr_hole']:>11.3f}{r['lpips']:>9.4f}{r['ms']:>9.1f}")
    delta = {
        "psnr_hole": rows["int8"]["psnr_hole"] - rows["float"]["psnr_hole"],
        "lpips": rows["int8"]["lpips"] - rows["float"]["lpips"],
    }
    write_json(
        args.json,
        dict(
            benchmark="int8_generator",
            machine=platform.machine(),
            cpus=os.cpu_count(),
            exported=os.path.abspath(args.exported),
            size=gen["size"],
            split=args.split,
            examples=args.examples,
            rows=rows,
            delta=delta,
            export_check=gen["int8"]["check"],
            served_by_default=gen["int8"]["default"],
        ),
    )
    print(f"delta_db={delta['psnr_hole']:.3f} delta_lpips={delta['lpips']:.4f}")
    print(json.dumps({"served_by_default": gen["int8"]["default"]}))


if __name__ == "__main__":
    main()
