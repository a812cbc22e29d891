"""Bad photos are skipped with their reason; good ones load; face folders crop and de-duplicate."""

import numpy as np
import pytest
from data_helpers import colour_photo, detectable_sample_faces, make_bad_files
from PIL import Image

from data_pipeline import faces, images


def test_each_bad_input_kind_is_skipped_with_its_reason(tmp_path):
    expected = make_bad_files(tmp_path)
    for name, reason in expected.items():
        with pytest.raises(images.SkipImage) as e:
            images.load_rgb(tmp_path / name)
        assert e.value.reason == reason, name


def test_good_photos_load_as_rgb_including_palette_and_alpha(tmp_path):
    rgb = colour_photo()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.webp", lossless=True)
    np.testing.assert_array_equal(images.load_rgb(tmp_path / "a.png"), rgb)
    assert images.load_rgb(tmp_path / "p.png").shape == (96, 96, 3)
    np.testing.assert_array_equal(images.load_rgb(tmp_path / "rgba.webp"), rgb)


def test_iter_faces_crops_labels_and_drops_duplicates_and_bad_files(tmp_path):
    make_bad_files(tmp_path)
    src = detectable_sample_faces(3)
    nested = tmp_path / "utk" / "deeper"
    nested.mkdir(parents=True)
    # UTKFace names carry age_gender_race; a re-encoded copy is a near-duplicate
    for i, path in enumerate(src):
        Image.open(path).save(nested / f"{30 + i}_{i % 2}_{i}_2017.jpg", quality=95)
    Image.open(src[0]).save(tmp_path / "zz_copy_of_first.png")  # sorted after utk/
    Image.fromarray(colour_photo(160, seed=5)).save(tmp_path / "noise.png")  # no face in it

    skips = faces.SkipLog()
    got = list(faces.iter_faces(str(tmp_path), size=64, skips=skips))
    assert len(got) == 3
    assert all(f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8 for f in got)
    labelled = {(f.age, f.gender, f.race) for f in got}
    assert labelled == {(30, 0, 0), (31, 1, 1), (32, 0, 2)}
    assert skips.counts[images.DUPLICATE] == 1
    assert skips.counts[images.NO_FACE] == 1
    assert skips.counts[images.HIGH_BIT_DEPTH] == 2 and skips.counts[images.GRAYSCALE] == 2
    assert skips.total == 11 + 2


def test_crop_face_keeps_the_box_and_pads_at_the_border():
    rgb = colour_photo(200)
    crop, box = faces.crop_face(rgb, (60, 60, 40, 40), 80, margin=0.5)
    # an 80 px square around a 40 px box, not resized: the box sits in the middle
    np.testing.assert_allclose(box, (20, 20, 40, 40))
    np.testing.assert_array_equal(crop, rgb[40:120, 40:120])
    crop, box = faces.crop_face(rgb, (150, 150, 40, 40), 80, margin=0.5)
    # near the corner the square shifts inside the photo instead of padding
    np.testing.assert_allclose(box, (30, 30, 40, 40))
    np.testing.assert_array_equal(crop, rgb[120:200, 120:200])
    crop, box = faces.crop_face(rgb, (0, 0, 190, 190), 64, margin=0.25)  # larger than the photo
    assert crop.shape == (64, 64, 3)


def test_celeba_attribute_file_gives_gender(tmp_path):
    (tmp_path / "CelebAMask-HQ-attribute-anno.txt").write_text(
        "2\nSmiling Male Young\n0.jpg 1 1 -1\n1.jpg -1 -1 1\n"
    )
    table = faces.read_celeba_gender(str(tmp_path))
    assert table == {"0.jpg": 0, "1.jpg": 1}
    assert faces.labels_from_name("/x/1.jpg", table) == {"gender": 1}
    assert faces.labels_from_name("/x/25_1_3_2017.jpg", {}) == {"age": 25, "gender": 1, "race": 3}


@pytest.mark.parametrize(
    "text, where",
    [
        ("", "no 'Male' column"),
        ("2\nSmiling Young\n0.jpg 1 1\n", "no 'Male' column"),
        ("2\nSmiling Male\n0.jpg 1\n", "line 3"),
        ("2\nSmiling Male\n0.jpg 1 yes\n", "line 3"),
    ],
)
def test_a_malformed_celeba_attribute_file_is_one_clear_error(tmp_path, text, where):
    (tmp_path / "CelebAMask-HQ-attribute-anno.txt").write_text(text)
    with pytest.raises(ValueError, match=where) as e:
        faces.read_celeba_gender(str(tmp_path))
    assert "expected CelebA's attribute format" in str(e.value)


def test_worker_processes_give_the_same_faces(tmp_path):
    make_bad_files(tmp_path)
    for i, path in enumerate(detectable_sample_faces(3)):
        Image.open(path).save(tmp_path / f"f{i}.jpg", quality=95)
    one_skips, two_skips = faces.SkipLog(), faces.SkipLog()
    one = list(faces.iter_faces(str(tmp_path), size=48, skips=one_skips))
    two = list(faces.iter_faces(str(tmp_path), size=48, skips=two_skips, workers=2))
    assert [f.id for f in one] == [f.id for f in two] and len(one) == 3
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    assert one_skips.counts == two_skips.counts


@pytest.mark.parametrize("shape", [(2048, 1), (1, 2048), (5000, 2), (2, 5000)])
def test_a_strip_thinner_than_the_detection_resize_has_no_face(shape):
    """Shrunk to the Haar pass's 1024 px, a side of 1/2048 of the other became 0 px, and OpenCV
    raised cv2.error (which stopped reconstruct's whole folder); in noise that thin, YuNet found
    faces (NaN corners, boxes far outside the strip) some runs and not others."""
    assert faces.find_faces(np.full((*shape, 3), 128, np.uint8)) == []
    for seed in range(3):
        strip = np.random.default_rng(seed).integers(0, 255, (*shape, 3), np.uint8)
        assert faces.find_faces(strip) == []
