"""The exported generator and detector behind the interfaces reconstruction uses (see
`serve/__init__.py`). Imports onnxruntime, NumPy and this project's light modules only."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Sequence

import numpy as np

from data_pipeline.categories import CATEGORIES, Instance, category_id, union_mask
from data_pipeline.images import to_uint8

MANIFEST = "manifest.json"
FORMAT = 1  # manifest.json's "format": raised when a reader of an older one would misread it


def onnx_session(path: str, *, keep_optimized: bool = True):
    """An onnxruntime CPU session of the model file at `path`; one clear error if it is none.

    onnxruntime optimises a graph each time it loads one. With `keep_optimized`, the first load
    saves the optimised graph beside `path` (`optimized_path`, ORT format, written whole or not
    at all) and later loads read it with optimisation off. Optimised graphs fit the machine and
    onnxruntime version that made them, so the file's name holds both, with the size and time
    of the model it came from: another CPU, version or model makes its own (and removes the
    old). A folder that cannot be written to loads as before."""
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; run launch/export.py again")
    optimized = optimized_path(path) if keep_optimized else None
    if optimized and os.path.isfile(optimized):
        with contextlib.suppress(Exception):  # a damaged file: made again below
            return ort.InferenceSession(
                optimized,
                _options(ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                providers=["CPUExecutionProvider"],
            )
    try:
        if optimized:
            with contextlib.suppress(OSError):  # a folder that cannot be written to
                return _session_saving(path, optimized)
        return ort.InferenceSession(path, _options(), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for corrupt or foreign files
        raise ValueError(f"{path} cannot be loaded as an ONNX model ({e})") from None


def _options(level=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the mask paste's resizing loop warns on every call
    if level is not None:
        options.graph_optimization_level = level
    return options


def _session_saving(path: str, optimized: str):
    """The session of `path`, its optimised graph written to `optimized` through a temporary
    file beside it and a rename (no reader sees half of it)."""
    import onnxruntime as ort

    folder = os.path.dirname(optimized)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(optimized)}.", dir=folder)
    os.close(fd)
    for stale in glob.glob(_optimized_pattern(path)):
        with contextlib.suppress(OSError):
            os.remove(stale)  # of an earlier model, onnxruntime version or machine
    try:
        options = _options()
        options.optimized_model_filepath = tmp
        options.add_session_config_entry("session.save_model_format", "ORT")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        os.chmod(tmp, 0o644)  # mkstemp's file is the owner's only
        os.replace(tmp, optimized)
        return session
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def optimized_path(path: str) -> str:
    """Where `onnx_session` keeps the optimised graph of the model at `path`: beside it, named
    after it, the onnxruntime version, this CPU and the model file's size and time."""
    import onnxruntime as ort

    stat = os.stat(path)
    key = f"{ort.__version__}|{_cpu()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return f"{os.path.splitext(path)[0]}.optimized-{digest}.ort"


def _optimized_pattern(path: str) -> str:
    return f"{glob.escape(os.path.splitext(path)[0])}.optimized-*.ort"


def _cpu() -> str:
    """This CPU, as far as onnxruntime's kernels tell CPUs apart: its architecture, model name
    and instruction set extensions."""
    text = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", errors="replace") as f:
        text = f.read()
    lines = [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith(("model name", "flags", "Features"))
    ]
    return "|".join([platform.machine(), platform.processor(), *dict.fromkeys(lines)])


class ExportedInpainter:
    """`ExportedInpainter(path, size)(face_RxRx3_uint8, hole_RxR) -> face_RxRx3_uint8`, as
    `jaxinpaint.inference.Inpainter`, from `generator.onnx`."""

    def __init__(self, path: str, size: int, coarse_fill: str = "harmonic"):
        self.size = int(size)
        self.coarse_fill = coarse_fill  # the smooth fill the generator corrects (the manifest's)
        self._session = onnx_session(path)
        inputs = self._session.get_inputs()
        self._names = [i.name for i in inputs]
        batch, *face = inputs[0].shape  # the batch: a number, or a name when it is open
        self.batch = batch if isinstance(batch, int) else None
        if face != [self.size, self.size, 3]:
            raise ValueError(f"{path} takes faces of {face}; the manifest says {self.size}")

    def inpaint_batch(self, occluded_BxRxRx3: np.ndarray, hole_BxRxRx1: np.ndarray) -> np.ndarray:
        """The composite, float32 in [0, 1], for uint8 faces and 0/1 holes."""
        occluded = np.ascontiguousarray(occluded_BxRxRx3, np.uint8)
        hole = np.ascontiguousarray(hole_BxRxRx1, np.uint8)
        step = self.batch or len(occluded)
        chunks = []
        for start in range(0, len(occluded), step):
            chunk = [occluded[start : start + step], hole[start : start + step]]
            n = len(chunk[0])
            if n < step:  # a graph of fixed batch size: pad the last chunk
                chunk = [
                    np.concatenate([a, np.zeros_like(a[:1]).repeat(step - n, 0)]) for a in chunk
                ]
            feed = dict(zip(self._names, chunk, strict=True))
            chunks.append(self._session.run(None, feed)[0][:n])
        return np.concatenate(chunks)

    def __call__(self, face_RxRx3: np.ndarray, hole_RxR: np.ndarray) -> np.ndarray:
        if face_RxRx3.shape != (self.size, self.size, 3):
            raise ValueError(
                f"the inpainter works at {self.size}x{self.size}x3, got {face_RxRx3.shape}"
            )
        hole = (np.asarray(hole_RxR) > 0).reshape(1, self.size, self.size, 1)
        return to_uint8(self.inpaint_batch(face_RxRx3[None], hole.astype(np.uint8))[0])


class ExportedDetector:
    """`detect(image_HxWx3_uint8) -> (union mask HxW uint8 0/1, [Instance])`, as
    `detector.predict.Detector.detect`, from `detector.onnx`: instances scoring at least
    `score_thresh`, best first; the union counts the `classes` (default all 19). `input_size`
    is the side the graph resizes every image to (the manifest's `size`)."""

    def __init__(
        self,
        path: str,
        *,
        input_size: int,
        score_thresh: float,
        score_floor: float = 0.0,
        classes: Sequence[str] = (),
    ):
        if not score_floor <= score_thresh <= 1.0:
            raise ValueError(
                f"score threshold {score_thresh} is outside [{score_floor}, 1]: the exported "
                f"detector keeps detections down to {score_floor} only (launch/export.py "
                "--score_floor)"
            )
        self.input_size = int(input_size)
        self.score_thresh = float(score_thresh)
        self.class_ids = frozenset(category_id(n) for n in (tuple(classes) or CATEGORIES))
        self._session = onnx_session(path)

    def predict(self, image_HxWx3: np.ndarray) -> list[Instance]:
        image = np.asarray(image_HxWx3)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image has shape {image.shape} and dtype {image.dtype}; expected HxWx3 uint8 RGB"
            )
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / np.float32(255.0)
        boxes, labels, scores, masks = self._session.run(None, {"image": chw})
        return [
            Instance(
                int(labels[i]), float(scores[i]), tuple(map(float, boxes[i])), masks[i, 0] >= 0.5
            )
            for i in range(len(scores))
            if scores[i] >= self.score_thresh
        ]

    def detect(self, image_HxWx3: np.ndarray) -> tuple[np.ndarray, list[Instance]]:
        chosen = [f for f in self.predict(image_HxWx3) if f.label in self.class_ids]
        return union_mask(chosen, *image_HxWx3.shape[:2]), chosen


@dataclasses.dataclass(frozen=True)
class Exported:
    """An export folder, loaded: the inpainter, the detector (None when none was exported), and
    what the manifest says about them."""

    folder: str
    manifest: dict
    inpainter: ExportedInpainter
    detector: ExportedDetector | None
    int8: bool = False  # the inpainter is generator.int8.onnx

    @property
    def size(self) -> int:
        return self.inpainter.size

    @property
    def align(self) -> bool:
        """Whether the generator trained on faces aligned by landmarks (reconstruct's default)."""
        return bool(self.manifest["generator"].get("align", True))


def read_manifest(folder: str) -> dict:
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: expected a folder written by launch/export.py")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or "generator" not in manifest:
        raise ValueError(f"{path} has no 'generator' entry; expected launch/export.py's manifest")
    if manifest.get("format") != FORMAT:
        raise ValueError(
            f"{path} is format {manifest.get('format')!r}; this version reads format {FORMAT}: "
            "export the models again with this version"
        )
    return manifest


def load(
    folder: str,
    *,
    score_thresh: float | None = None,
    classes: Sequence[str] | None = None,
    int8: bool = True,
) -> Exported:
    """The models of an export folder; `score_thresh` and `classes` default to the detector's
    training config, as recorded at export. The generator is the int8 one when the folder holds
    one that met the export's quality bar (the manifest's `generator.int8.default`), unless
    `int8=False`; `Exported.int8` says which."""
    manifest = read_manifest(folder)
    gen = manifest["generator"]
    try:
        quantized = gen.get("int8") or {}
        use_int8 = bool(int8 and quantized.get("default"))
        inpainter = ExportedInpainter(
            os.path.join(folder, quantized["onnx"] if use_int8 else gen["onnx"]),
            gen["size"],
            gen.get("coarse_fill", "harmonic"),
        )
        detector = None
        if manifest.get("detector"):
            det = manifest["detector"]
            detector = ExportedDetector(
                os.path.join(folder, det["onnx"]),
                input_size=det["size"],
                score_thresh=det["score_thresh"] if score_thresh is None else score_thresh,
                score_floor=det["score_floor"],
                classes=det["classes"] if classes is None else classes,
            )
    except KeyError as e:
        raise ValueError(f"{os.path.join(folder, MANIFEST)} lacks the field {e}") from None
    return Exported(os.path.abspath(folder), manifest, inpainter, detector, use_int8)
