"""serve/web.py's HTTP API on the tiny export (conftest.py): /detect shows what a run replaces,
/reconstruct answers what the CLI's wiring computes, bad uploads get one sentence, limits give
413, a failure leaves the next request untouched, nothing is left in the temporary folder, and 8
concurrent requests over a real server each get their own answer. The page itself:
tests/test_web_browser.py."""

import base64
import concurrent.futures
import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import cv2
import httpx2
import numpy as np
import pytest
from inpaint_tiny import REPO
from PIL import ExifTags, Image, ImageCms
from starlette.testclient import TestClient
from web_server import running

import serve
from data_pipeline.compose import demo_photo
from data_pipeline.images import load_photo
from jaxinpaint.reconstruct import DETECTOR_GROW, Reconstructor
from serve.web import create_app

HEAVY = ("jax", "jaxlib", "flax", "orbax", "optax", "torch", "torchvision", "tensorflow")
FEATHER = 3  # Reconstructor's default seam


@pytest.fixture(scope="module")
def export(tiny_export):
    return str(tiny_export / "exported")


@pytest.fixture(scope="module")
def app(export):
    return create_app(export, max_jobs=8)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture()
def tmp(monkeypatch, tmp_path):
    """The temporary folder the server works in, checked empty after the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert os.listdir(folder) == [], "a request left files behind"


@pytest.fixture(scope="module")
def photo():
    return demo_photo()[0]


def png(image) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def cli_reconstructor(export, *, threshold=None, classes=None, dilate=0):
    """The Reconstructor `launch/reconstruct.py --exported` builds, for reference."""
    models = serve.load(export, score_thresh=threshold, classes=classes)
    return Reconstructor(
        models.inpainter,
        models.detector.detect,
        size=models.size,
        mask_size=models.detector.input_size,
        grow=DETECTOR_GROW,
        dilate=dilate,
        align=models.align,
    )


def test_detect_shows_every_detection_and_the_hole_a_run_replaces(client, export, photo, tmp):
    health = client.get("/health").json()
    assert health["detector"] and health["threshold"] == 0.05 and health["score_floor"] == 0.01
    assert len(health["classes"]) == 19 and health["limits"]["max_pixels"] == 25_000_000

    answer = client.post("/detect", files={"photo": ("astronaut.png", png(photo))}).json()
    assert answer["size_wh"] == [512, 512] and answer["message"] == ""
    (face,) = answer["faces"]
    found = face["detections"]
    assert len(found) > 5 and all(d["score"] >= 0.01 for d in found)
    for d in found:
        assert d["category"] in health["classes"] and d["chosen"] == (d["score"] >= 0.05)
        assert all(
            np.asarray(ring).ndim == 2 and np.asarray(ring).shape[1] == 2 for ring in d["outline"]
        )
    reference = cli_reconstructor(export)
    np.testing.assert_array_equal(decode(answer["mask"]) > 127, reference.hole(photo))

    # A narrower choice: the mask is what the CLI's --remove and --score_thresh replace.
    top = found[0]["category"]
    narrow = {"classes": top, "threshold": "0.5", "dilate": "2"}
    answer = client.post("/detect", files={"photo": ("a.png", png(photo))}, data=narrow).json()
    chosen = [d for f in answer["faces"] for d in f["detections"] if d["chosen"]]
    assert chosen and all(d["category"] == top and d["score"] >= 0.5 for d in chosen)
    assert len(answer["faces"][0]["detections"]) == len(found)  # the others are still shown
    reference = cli_reconstructor(export, threshold=0.5, classes=[top], dilate=2)
    hole = decode(answer["mask"]) > 127
    np.testing.assert_array_equal(hole, reference.hole(photo))
    assert 0 < answer["replaced_pixels"] == hole.sum()

    none = client.post("/detect", files={"photo": ("a.png", png(photo))}, data={"classes": "none"})
    assert none.json()["replaced_pixels"] == 0


def camera_jpeg(image) -> tuple[bytes, dict]:
    """A JPEG with an sRGB profile and EXIF with a make, and those two."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Orientation] = "Canon", 1
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc)
    return buf.getvalue(), {"icc_profile": icc}


def test_reconstruct_answers_what_the_cli_computes(client, export, photo, tmp, tmp_path):
    answer = client.post(
        "/reconstruct", files={"photo": ("astronaut.png", png(photo))}, data={"overlay": "true"}
    ).json()
    expected = cli_reconstructor(export)(photo)
    np.testing.assert_array_equal(decode(answer["images"]["png"]), expected.image)
    np.testing.assert_array_equal(decode(answer["mask"]) > 127, expected.hole)
    assert answer["message"] == "astronaut.png: reconstructed 1 of 1 face(s)" and answer["changed"]
    record = answer["record"]
    assert record["input"] == "astronaut.png" and record["mask"] == "detector"
    assert record["threshold"] == 0.05 and len(record["classes"]) == 19
    detections = record["faces"][0]["detections"]
    assert [d["category"] for d in detections] == [d.category for d in expected.faces[0].detections]
    assert decode(answer["overlay"]).shape == photo.shape and "telea" not in answer

    # A camera JPEG with the user's mask: PNG and JPEG out, both keeping its EXIF and profile.
    jpeg, metadata = camera_jpeg(photo)
    (tmp_path / "in.jpg").write_bytes(jpeg)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:150, 200:250] = 255
    answer = client.post(
        "/reconstruct",
        files={"photo": ("IMG_1.JPG", jpeg), "mask": ("m.png", png(mask))},
        data={"formats": "png,jpeg", "compare": "true"},
    ).json()
    assert (
        set(answer["images"]) == {"png", "jpeg"}
        and answer["record"]["mask"] == "uploaded mask m.png"
    )
    assert "threshold" not in answer["record"]
    photo_jpeg = load_photo(tmp_path / "in.jpg")
    ours = Reconstructor(cli_reconstructor(export).inpaint, None, size=32, align=True)
    result = decode(answer["images"]["png"])
    np.testing.assert_array_equal(result, ours(photo_jpeg, mask > 0).image)
    far = cv2.dilate(mask, np.ones((2 * FEATHER + 3,) * 2, np.uint8)) == 0
    np.testing.assert_array_equal(result[far], photo_jpeg[far])
    assert (np.abs(result.astype(int) - photo_jpeg).max(-1) > 0)[mask > 0].mean() > 0.5
    for kind in ("png", "jpeg"):
        with Image.open(io.BytesIO(base64.b64decode(answer["images"][kind]))) as im:
            assert (
                im.format == kind.upper() and im.info.get("icc_profile") == metadata["icc_profile"]
            )
            assert im.getexif()[ExifTags.Base.Make] == "Canon"
    telea = decode(answer["telea"])
    assert np.array_equal(telea[far], photo_jpeg[far]) and not np.array_equal(telea, result)


def test_a_reference_photo_guides_the_fill(client, photo, tmp):
    """The astronaut without her sunglasses as the reference of the photo with them (the CLI's
    --reference): its face guides the fill, and the record says so."""
    from skimage import data

    mask = png(demo_photo()[1].astype(np.uint8) * 255)
    files = {"photo": ("a.png", png(photo)), "mask": ("m.png", mask)}
    plain = client.post("/reconstruct", files=files).json()
    files["reference"] = ("her.png", png(data.astronaut()))
    guided = client.post("/reconstruct", files=files).json()
    (face,) = guided["record"]["faces"]
    assert face["reference"] == "her.png" and face["reference_cover"] > 0.5
    assert "reference" not in plain["record"]["faces"][0]
    assert guided["images"]["png"] != plain["images"]["png"]

    files["reference"] = ("noise.png", png(noise((200, 200, 3))))
    response = client.post("/reconstruct", files=files)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("reference noise.png: no face")


def noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


UPLOADS = {  # what a test sends, by name
    "empty": lambda photo: b"",
    "text": lambda photo: b"hello, not a photo",
    "photo": png,
    "cut": lambda photo: png(photo)[:3000],
    "noise": lambda photo: png(noise((48, 64, 3))),
    "photo as mask": lambda photo: png(photo[..., ::-1]),  # a colour photo saved as a mask
}


@pytest.mark.parametrize(
    "files, data, message",
    [
        ({"photo": ("empty.jpg", "empty")}, {}, "empty.jpg: zero-byte file"),
        ({"photo": ("notes.jpg", "text")}, {}, "notes.jpg: not an image"),
        ({"photo": ("cut.png", "cut")}, {}, "cut.png: truncated"),
        ({"photo": ("noise.png", "noise")}, {}, "noise.png: no face found"),
        (
            {"photo": ("a.png", "photo"), "mask": ("m.png", "noise")},
            {},
            "mask m.png is 64x48 px but a.png is 512x512 px",
        ),
        (
            {"photo": ("a.png", "photo"), "mask": ("m.png", "photo as mask")},
            {},
            "mask m.png is in colour",
        ),
        ({"photo": ("a.png", "photo")}, {"classes": "hat"}, "unknown ['hat']"),
        ({"photo": ("a.png", "photo")}, {"threshold": "0.001"}, "outside [0.01, 1]"),
        ({"photo": ("a.png", "photo")}, {"formats": "gif"}, "formats: expected"),
        ({"photo": ("a.png", "photo")}, {"dilate": "100"}, "dilate is photo pixels"),
    ],
)
def test_bad_uploads_get_one_sentence(client, photo, tmp, files, data, message):
    files = {field: (name, UPLOADS[what](photo)) for field, (name, what) in files.items()}
    response = client.post("/reconstruct", files=files, data=data)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail and "Traceback" not in response.text


def test_detect_without_a_face_says_so_and_the_mask_decides(client, tmp):
    answer = client.post("/detect", files={"photo": ("noise.png", png(noise((96, 128, 3))))})
    assert answer.status_code == 200
    assert answer.json()["faces"] == [] and "no face found" in answer.json()["message"]
    # With a mask there is something to do: a face-sized window around it is reconstructed.
    mask = np.zeros((96, 128), np.uint8)
    mask[40:50, 50:70] = 255
    files = {"photo": ("noise.png", png(noise((96, 128, 3)))), "mask": ("m.png", png(mask))}
    answer = client.post("/reconstruct", files=files).json()
    assert answer["changed"] and decode(answer["mask"])[45, 60] == 255


def test_an_export_without_a_detector_takes_masks(export, photo, tmp, tmp_path):
    folder = tmp_path / "generator_only"
    folder.mkdir()
    manifest = json.loads(pathlib.Path(export, "manifest.json").read_text())
    manifest["detector"] = None
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for name in os.listdir(export):  # the float generator, and the int8 one the export may serve
        if name.startswith("generator."):
            os.symlink(os.path.join(export, name), folder / name)
    client = TestClient(create_app(str(folder)))
    assert client.get("/health").json()["detector"] is False
    files = {"photo": ("a.png", png(photo))}
    answer = client.post("/detect", files=files).json()  # the faces, for the user to paint on
    assert len(answer["faces"]) == 1 and answer["replaced_pixels"] == 0
    response = client.post("/reconstruct", files=files)
    assert response.status_code == 422 and "no detector: send a mask" in response.json()["detail"]
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:150, 200:250] = 255
    files["mask"] = ("m.png", png(mask))
    assert client.post("/reconstruct", files=files).json()["changed"]


def test_limits_give_413_before_the_photo_is_decoded(export, photo, tmp):
    small = TestClient(create_app(export, max_bytes=300_000, max_pixels=200 * 200))
    jpeg = camera_jpeg(photo)[0]
    assert len(jpeg) < 300_000
    response = small.post("/detect", files={"photo": ("big.jpg", jpeg)})
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "big.jpg: too large (512x512 px > 40000 px); this server takes up to 40000 pixels"
    )
    big = png(noise((400, 400, 3)))
    assert len(big) > 300_000
    for route in ("/detect", "/reconstruct"):
        response = small.post(route, files={"photo": ("noise.png", big)})
        assert response.status_code == 413 and "(0.286102 MiB)" in response.json()["detail"]
    # Without a Content-Length (a chunked upload) it is cut off as it arrives.
    chunks = (b"x" * 100_000 for _ in range(5))
    response = small.post(
        "/detect", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413


def test_a_failure_leaves_the_next_request_untouched(client, app, photo, tmp, monkeypatch):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:150, 200:250] = 255
    files = {"photo": ("a.png", png(photo)), "mask": ("m.png", png(mask))}
    before = client.post("/reconstruct", files=files).json()["images"]["png"]

    def broken(*args):
        raise RuntimeError("onnxruntime ran out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(app.state.service.models.inpainter, "inpaint_batch", broken)
        response = client.post("/reconstruct", files=files)
    assert response.status_code == 500
    assert response.json()["detail"] == (
        "reconstruction failed (RuntimeError: onnxruntime ran out of memory)"
    )
    assert client.post("/reconstruct", files=files).json()["images"]["png"] == before


def test_eight_concurrent_requests_each_get_their_own_answer(app, photo, tmp):
    """Four different requests (the detector's mask, and three photos with masks, one with a
    reference photo), each twice, at once over HTTP; each answer is the one the same request
    gets alone."""
    from skimage import data

    masks = []
    for i in range(3):
        mask = np.zeros(photo.shape[:2], np.uint8)
        mask[120 + 15 * i : 140 + 15 * i, 190:260] = 255
        masks.append(png(mask[40:, 20:] if i == 2 else mask))
    requests = [
        ("/reconstruct", {"photo": ("a.png", png(photo))}),  # the detector's mask
        ("/reconstruct", {"photo": ("b.png", png(photo[:, ::-1].copy())), "mask": ("m", masks[0])}),
        (
            "/reconstruct",
            {
                "photo": ("c.png", png(photo)),
                "mask": ("m", masks[1]),
                "reference": ("r.png", png(data.astronaut())),  # its face mesh is found too
            },
        ),
        ("/reconstruct", {"photo": ("d.png", png(photo[40:, 20:])), "mask": ("m", masks[2])}),
    ]

    def send(url, job):
        route, files = job
        response = httpx2.post(url + route, files=files, timeout=300)
        assert response.status_code == 200, response.text
        return response.json()["images"]["png"]

    with running(app) as url:
        alone = [send(url, job) for job in requests]
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda job: send(url, job), requests * 2))
        seconds = time.perf_counter() - start
    assert together == alone * 2
    print(f"8 concurrent requests: {seconds:.1f} s")


def test_the_server_imports_neither_jax_nor_torch(export, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "a.png")
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:150, 200:250] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    script = (
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from serve.web import create_app\n"
        f"client = TestClient(create_app({export!r}))\n"
        f"files = {{'photo': open({str(tmp_path / 'a.png')!r}, 'rb'),\n"
        f"         'mask': open({str(tmp_path / 'm.png')!r}, 'rb')}}\n"
        "assert client.post('/reconstruct', files=files).status_code == 200\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_launcher_serves_the_page_and_refuses_a_bad_folder(export, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's packages, as `-c` sees them
    proc = subprocess.run(
        [sys.executable, "launch/web.py", f"--exported={tmp_path}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "manifest.json not found" in proc.stderr
    assert "Traceback" not in proc.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "launch/web.py", f"--exported={export}", f"--port={port}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert server.stdout.readline().strip() == (
            f"jaxinpaint: open http://127.0.0.1:{port}/ (Ctrl-C stops)"
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx2.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx2.ConnectError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
        assert page.status_code == 200 and "<title>jaxinpaint</title>" in page.text
        for path in ("/static/app.js", "/static/style.css", "/docs", "/openapi.json"):
            assert httpx2.get(f"http://127.0.0.1:{port}{path}").status_code == 200, path
        schema = httpx2.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert {"/detect", "/reconstruct", "/health"} <= set(schema["paths"])
    finally:
        server.terminate()
        server.wait(timeout=30)
