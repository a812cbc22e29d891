"""The web page and the HTTP API it calls: photo in, faces and occluders found, mask edited,
reconstruction out, from an export folder (`serve.load`) with onnxruntime, OpenCV and NumPy only.

    jaxinpaint-web --exported=runs/demo/exported          # python launch/web.py ..., same flags
    open http://127.0.0.1:8000/

`create_app(folder)` is a FastAPI app (uvicorn runs it). Routes (docs/web.md has the fields):

    GET  /              the page (serve/static/: plain HTML, JS and CSS; nothing from a CDN)
    GET  /health        the models and the limits, as JSON
    POST /detect        multipart photo [+ classes, threshold, dilate] -> the faces, every
                        detection down to the export's score floor (class, score, outline) and
                        the mask the chosen ones make: what a run would replace
    POST /reconstruct   multipart photo [+ mask | classes, threshold, dilate] [+ reference]
                        [+ formats, compare, overlay] -> the result (base64 PNG/JPEG/WebP
                        keeping the photo's EXIF and ICC profile), the replaced pixels, Telea
                        on them, and the record `jaxinpaint.records.photo_record` writes for
                        the CLI
    GET  /openapi.json  the API's OpenAPI schema; GET /docs renders it offline

Each request works in a temporary folder of its own that is removed when it ends, failed or not;
requests share nothing but the loaded models, so one that fails leaves the next untouched.
Requests over `max_bytes` (whole body) or photos over `max_pixels` get 413; a file that is not a
photo, a mask of another size, or no face where there is no mask to go by get 422 with one
sentence; nothing answers with a stack trace (the server's log has it).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from typing import Annotated

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import serve
from data_pipeline import guide
from data_pipeline.categories import category_id, colour, union_mask
from data_pipeline.images import TOO_LARGE, SkipImage, load_photo, photo_metadata
from jaxinpaint.fills import classical_inpaint
from jaxinpaint.photo_files import PhotoError, mask_from_rgb
from jaxinpaint.reconstruct import DETECTOR_GROW, Reconstruction, Reconstructor, draw_overlay
from jaxinpaint.records import photo_record
from jaxinpaint.samples import write_image
from serve.runtime import read_manifest

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BYTES = 32 * 2**20  # a request's whole body: a camera JPEG is 2-15 MB, its PNG mask less
MAX_PIXELS = 25_000_000  # a 6000x4000 camera photo; 12 MP phone photos take ~10 s on 2 cores
NO_CLASSES = "none"  # the `classes` field that chooses none (an empty field is no field)
FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
log = logging.getLogger("jaxinpaint.web")

# OpenCV's cascades and DNN networks behind `data_pipeline.faces.find_faces` (cached, one each
# per process; the face mesh is shared with `data_pipeline.guide`) keep per-call state: two
# threads in one of them crash or mix their faces. Face finding is a small part of a request;
# the detector and the generator (onnxruntime sessions, whose `run` is thread-safe) and the
# fills run concurrently, except for a face guided by a reference photo (its mesh is found as
# it is filled).
_OPENCV_FACES = threading.RLock()


class _Reconstructor(Reconstructor):
    """`Reconstructor`, using OpenCV's face networks under the process-wide lock."""

    def find_faces(self, photo):
        with _OPENCV_FACES:
            return super().find_faces(photo)

    def _guided(self, *args):
        with _OPENCV_FACES:  # the face mesh of a face a reference photo guides
            return super()._guided(*args)


class _Choice:
    """The export's detector as a mask source: its instances of `classes` scoring at least
    `threshold`. `seen` (one dict per request) keeps each face crop's detections, so that a
    request that surveys twice runs the detector once per face."""

    def __init__(self, detector, classes: Sequence[str], threshold: float, seen: dict):
        self.detector, self.threshold, self.seen = detector, threshold, seen
        self.ids = frozenset(category_id(c) for c in classes)

    def __call__(self, face_RxRx3: np.ndarray):
        key = (face_RxRx3.shape, hashlib.blake2b(face_RxRx3.tobytes(), digest_size=16).digest())
        if key not in self.seen:
            self.seen[key] = self.detector.predict(face_RxRx3)
        chosen = [i for i in self.seen[key] if i.label in self.ids and i.score >= self.threshold]
        return union_mask(chosen, *face_RxRx3.shape[:2]), chosen


@dataclasses.dataclass(frozen=True)
class Request:
    """What one request asks for, checked: the detector's classes and threshold, photo pixels
    the hole grows by."""

    classes: tuple[str, ...]
    threshold: float
    dilate: int


class Service:
    """The loaded export and what every request shares; each request builds its own
    `Reconstructor` (cheap: it holds settings, not models)."""

    def __init__(self, folder: str, *, max_bytes: int, max_pixels: int, max_jobs: int):
        detector = read_manifest(folder).get("detector") or {}
        self.classes = tuple(detector.get("classes", ()))
        self.threshold = float(detector.get("score_thresh", 0.0))
        self.floor = float(detector.get("score_floor", 0.0))
        # The detector keeps everything down to the export's floor; requests choose above it.
        self.models = serve.load(folder, score_thresh=self.floor if detector else None)
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self._jobs = threading.BoundedSemaphore(max_jobs)  # photos in the models at once

    def health(self) -> dict:
        return {
            "status": "ok",
            "exported": self.models.folder,
            "generator_size": self.models.size,
            "detector": self.models.detector is not None,
            "classes": list(self.classes),
            "colours": {c: _hex(colour(category_id(c))) for c in self.classes},
            "threshold": self.threshold,
            "score_floor": self.floor,
            "limits": {"max_bytes": self.max_bytes, "max_pixels": self.max_pixels},
        }

    def request(self, classes: str | None, threshold: float | None, dilate: int) -> Request:
        """The checked choice of a request's form fields: `classes` comma-separated (absent or
        empty: all the detector knows; "none": none), `threshold` in [score floor, 1] (absent:
        the export's), `dilate` in [0, 64]."""
        chosen = self.classes
        if classes and classes.strip() == NO_CLASSES:
            chosen = ()
        elif classes:
            chosen = tuple(c.strip() for c in classes.split(",") if c.strip())
            unknown = sorted(set(chosen) - set(self.classes))
            if unknown:
                raise HTTPException(
                    422, f"classes: unknown {unknown}; this detector knows {list(self.classes)}"
                )
        threshold = self.threshold if threshold is None else float(threshold)
        if not self.floor <= threshold <= 1.0:
            raise HTTPException(
                422,
                f"threshold {threshold:g} is outside [{self.floor:g}, 1]: the export keeps "
                f"detections down to {self.floor:g} only",
            )
        if not 0 <= dilate <= 64:
            raise HTTPException(422, f"dilate is photo pixels in [0, 64], got {dilate}")
        return Request(chosen, threshold, dilate)

    def reconstructor(self, choice: Request, seen: dict) -> Reconstructor:
        """As `launch/reconstruct.py --exported` builds it, with this request's choice."""
        detector = self.models.detector
        return _Reconstructor(
            self.models.inpainter,
            None if detector is None else _Choice(detector, choice.classes, choice.threshold, seen),
            size=self.models.size,
            mask_size=None if detector is None else detector.input_size,
            grow=DETECTOR_GROW,
            dilate=choice.dilate,
            align=self.models.align,
        )

    def survey(self, photo: np.ndarray, choice: Request) -> dict:
        """/detect's answer without the mask image: the faces, every detection (each marked
        `chosen` or not) and the hole of the chosen ones."""
        seen = {}
        with self._jobs:
            if self.models.detector is None:  # faces only; the user paints the mask
                empty = np.zeros(photo.shape[:2], np.float32)
                chosen = found = self.reconstructor(choice, seen).survey(photo, empty)
            else:
                every = dataclasses.replace(choice, classes=self.classes, threshold=self.floor)
                found = self.reconstructor(every, seen).survey(photo)
                chosen = self.reconstructor(choice, seen).survey(photo)
        faces = []
        for face in found.faces:
            detections = []
            for d in face.detections:
                is_chosen = d.category in choice.classes and d.score >= choice.threshold
                detections.append(
                    {
                        "category": d.category,
                        "score": round(d.score, 4),
                        "box_xyxy": list(d.box),
                        "outline": [c.reshape(-1, 2).tolist() for c in d.outline],
                        "chosen": is_chosen,
                    }
                )
            faces.append(
                {"box_xywh": list(face.box), "aligned": face.aligned, "detections": detections}
            )
        return {
            "faces": faces,
            "hole": chosen.hole,
            "seconds": {k: round(v, 3) for k, v in found.seconds.items()},
        }

    def reconstruct(
        self, photo: np.ndarray, mask: np.ndarray | None, choice: Request, references=()
    ) -> Reconstruction:
        if mask is None and self.models.detector is None:
            raise HTTPException(422, "this export has no detector: send a mask (white = remove)")
        with self._jobs:
            return self.reconstructor(choice, {})(photo, mask, references)

    @staticmethod
    def reference(image: np.ndarray, name: str):
        """`data_pipeline.guide.reference` of an uploaded photo; 422 when it shows no face."""
        try:
            with _OPENCV_FACES:
                return guide.reference(image, name)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`, from its Content-Length before
    reading it, or as soon as more arrives (a chunked upload); nothing over it is read."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(scope, send)
        received, over, started = 0, False, False

        async def limited_receive():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                over = True
                raise _TooLarge
            return message

        async def watched_send(message):
            nonlocal started
            if over:  # the app's answer to a body cut off (FastAPI: 400, cannot parse) is ours
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(scope, send)
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope, send):
        mib = self.max_bytes / 2**20
        detail = f"the request is larger than this server takes ({mib:g} MiB)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, None, send)


def _hex(rgb) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def _b64(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


def _save_upload(upload: UploadFile, folder: str, name: str) -> str:
    """The upload's bytes in `folder`/`name` (its own name is never used as a path)."""
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        while chunk := upload.file.read(2**20):
            f.write(chunk)
    return path


def _display_name(upload: UploadFile | None, default: str) -> str:
    name = os.path.basename((upload.filename if upload else None) or "") or default
    return name[:200]


def _read(path: str, name: str, max_pixels: int, background=(255, 255, 255)) -> np.ndarray:
    """`load_photo` of an upload; its errors as 413 (too many pixels) or 422, naming `name`."""
    try:
        return load_photo(path, max_pixels=max_pixels, background=background)
    except SkipImage as e:
        detail = f" ({e.detail.replace(path, name)})" if e.detail else ""
        if e.reason == TOO_LARGE:
            raise HTTPException(
                413, f"{name}: too large{detail}; this server takes up to {max_pixels} pixels"
            ) from None
        raise HTTPException(422, f"{name}: {e.reason}{detail}") from None


def _formats(formats: str) -> list[str]:
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown or not chosen:
        raise HTTPException(422, f"formats: expected some of {list(FORMATS)}, got {formats!r}")
    return list(dict.fromkeys(chosen))


def _message(name: str, result: Reconstruction) -> str:
    """The CLI's line for one photo."""
    if not result.faces:
        return f"{name}: no face found; unchanged"
    if not result.changed:
        return f"{name}: nothing to remove on {len(result.faces)} face(s); unchanged"
    done = sum(f.inpainted for f in result.faces)
    return f"{name}: reconstructed {done} of {len(result.faces)} face(s)"


def _fail(what: str, e: Exception):
    """A model or file error as one line (500); the traceback goes to the server's log."""
    log.exception("%s failed", what)
    raise HTTPException(500, f"{what} failed ({type(e).__name__}: {e})") from None


# The form fields of /detect and /reconstruct, as the OpenAPI schema (/docs) shows them.
Photo = Annotated[UploadFile, File(description="The photo: JPEG, PNG, WebP, BMP, TIFF...")]
Reference = Annotated[
    UploadFile | None,
    File(description="A photo of the same person: its face guides the fill where it shows."),
]
MaskFile = Annotated[
    UploadFile | None,
    File(description="Instead of the detector: the photo's size, bright (> 127) = remove."),
]
Classes = Annotated[
    str | None, Form(description="Detector classes, comma-separated; absent: all; 'none': none.")
]
Threshold = Annotated[
    float | None, Form(description="Detector score threshold; absent: the export's.")
]
Dilate = Annotated[int, Form(description="Photo pixels the hole grows by (a mask's too).")]
Formats = Annotated[str, Form(description="The result's formats: some of png, jpeg, webp.")]
Compare = Annotated[bool, Form(description="Also OpenCV's Telea on the same pixels.")]
Overlay = Annotated[bool, Form(description="Also the photo with what was found drawn on it.")]
ERRORS = {
    413: {"description": "The request or the photo is over the server's limits."},
    422: {"description": "Not a photo, a mask of another size, no face and no mask, a bad field."},
    500: {"description": "The models failed on this photo (one sentence; the log has more)."},
}


def create_app(
    exported_folder: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_jobs: int | None = None,
) -> FastAPI:
    """The app serving the page and the API on the export in `exported_folder`. `max_jobs`
    photos go through the models at once (default: the CPU count); others wait their turn."""
    service = Service(
        exported_folder,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        max_jobs=max_jobs or os.cpu_count() or 1,
    )
    # FastAPI's own /docs loads Swagger UI from a CDN; ours renders /openapi.json offline.
    app = FastAPI(
        title="jaxinpaint",
        summary="Remove what covers the faces in a photo and reconstruct the faces underneath.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(_BodyLimit, max_bytes=max_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Exception)
    async def internal_error(request, exc):  # the last resort: never a stack trace out
        log.error("unexpected error", exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, 500)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(os.path.join(STATIC, "index.html"))

    @app.get("/docs", include_in_schema=False)
    def docs():
        return FileResponse(os.path.join(STATIC, "api.html"))

    @app.get("/health")
    def health() -> dict:
        """The export's models, the detector's classes, default threshold and score floor, and
        the size limits."""
        return service.health()

    @app.post("/detect", responses=ERRORS)
    def detect(
        photo: Photo, classes: Classes = None, threshold: Threshold = None, dilate: Dilate = 0
    ) -> dict:
        """The faces in the photo, every detection down to the export's score floor (class,
        score, box, outline in photo pixels, `chosen`: of `classes` and at least `threshold`),
        and `mask` (base64 PNG, white = replaced): the pixels a run with the same fields would
        replace. Without a face: no faces, an empty mask, and a message."""
        choice = service.request(classes, threshold, dilate)
        name = _display_name(photo, "photo")
        with tempfile.TemporaryDirectory(prefix="jaxinpaint-web-") as tmp:
            image = _read(_save_upload(photo, tmp, "photo"), name, service.max_pixels)
            try:
                found = service.survey(image, choice)
                write_image(os.path.join(tmp, "mask.png"), found["hole"].astype(np.uint8) * 255)
                mask = _b64(os.path.join(tmp, "mask.png"))
            except (ValueError, RuntimeError, MemoryError, OSError, cv2.error) as e:
                _fail("detection", e)
        h, w = image.shape[:2]
        message = "" if found["faces"] else f"{name}: no face found; paint what to remove"
        return {
            "size_wh": [w, h],
            "faces": found["faces"],
            "mask": mask,
            "replaced_pixels": int(found["hole"].sum()),
            "classes": list(choice.classes),
            "threshold": choice.threshold,
            "dilate": choice.dilate,
            "message": message,
            "seconds": found["seconds"],
        }

    @app.post("/reconstruct", responses=ERRORS)
    def reconstruct(
        photo: Photo,
        mask: MaskFile = None,
        reference: Reference = None,
        classes: Classes = None,
        threshold: Threshold = None,
        dilate: Dilate = 0,
        formats: Formats = "png",
        compare: Compare = False,
        overlay: Overlay = False,
    ) -> dict:
        """The photo with every occluded face reconstructed: `images` (base64, per format, each
        keeping the photo's EXIF and ICC profile as the CLI's outputs do), `mask` (base64 PNG of
        the pixels replaced), `telea` and `overlay` when asked, `record` (the CLI's record.json:
        faces, detections, hole fractions, the reference that guided each, seconds) and a
        one-line `message`. With `mask` the detector is not asked. With `reference` (a photo of
        the same person), its face guides the fill where it covers the hole (the CLI's
        `--reference`). No face and no mask: 422."""
        choice = service.request(classes, threshold, dilate)
        kinds = _formats(formats)
        name = _display_name(photo, "photo")
        with tempfile.TemporaryDirectory(prefix="jaxinpaint-web-") as tmp:
            path = _save_upload(photo, tmp, "photo")
            image = _read(path, name, service.max_pixels)
            user_mask = None
            if mask is not None:
                mask_name = _display_name(mask, "mask")
                # Over black, transparent pixels read as keep: a mask painted on a clear layer.
                rgb = _read(
                    _save_upload(mask, tmp, "mask"), mask_name, service.max_pixels, (0, 0, 0)
                )
                if rgb.shape[:2] != image.shape[:2]:
                    (mh, mw), (ph, pw) = rgb.shape[:2], image.shape[:2]
                    raise HTTPException(
                        422, f"mask {mask_name} is {mw}x{mh} px but {name} is {pw}x{ph} px"
                    )
                try:  # the CLI's checks: black and white, not inverted
                    user_mask = mask_from_rgb(rgb, f"mask {mask_name}")
                except PhotoError as e:
                    raise HTTPException(422, str(e)) from None
            references = ()
            if reference is not None:
                ref_name = _display_name(reference, "reference")
                ref_path = _save_upload(reference, tmp, "reference")
                references = [
                    service.reference(_read(ref_path, ref_name, service.max_pixels), ref_name)
                ]
            try:
                result = service.reconstruct(image, user_mask, choice, references)
            except (ValueError, RuntimeError, MemoryError, cv2.error) as e:
                _fail("reconstruction", e)
            if not result.faces and user_mask is None:
                raise HTTPException(
                    422, f"{name}: no face found; paint over what to remove and run again"
                )
            fields = {"input": name, "dilate": choice.dilate}
            if user_mask is None:  # the detector's choice; with a mask it was not asked
                fields.update(classes=list(choice.classes), threshold=choice.threshold)
            source = f"uploaded mask {mask_name}" if user_mask is not None else "detector"
            record = photo_record(result, mask=source, **fields)
            answer = {"message": _message(name, result), "changed": result.changed}
            try:
                metadata = photo_metadata(path)
                images = {}
                for kind in kinds:
                    out = os.path.join(tmp, "result" + FORMATS[kind])
                    write_image(out, result.image, metadata)
                    images[kind] = _b64(out)
                extras = {"mask": result.hole.astype(np.uint8) * 255}
                if compare:
                    extras["telea"] = classical_inpaint(image, result.hole, "telea")
                if overlay:
                    extras["overlay"] = draw_overlay(image, result)
                for key, picture in extras.items():
                    write_image(os.path.join(tmp, key + ".png"), picture)
                    answer[key] = _b64(os.path.join(tmp, key + ".png"))
            except (ValueError, OSError, MemoryError, cv2.error) as e:
                _fail("writing the result", e)
        return {**answer, "images": images, "record": record}

    return app
