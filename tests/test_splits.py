"""Splits by person (data_pipeline/splits.py) for the built dataset and the generated source, and
launch/evaluate.py's refusal to score faces that training saw."""

import collections
import json
import subprocess
import sys

import pytest
from data_helpers import detectable_sample_faces
from inpaint_tiny import REPO, tiny_config
from PIL import Image

from data_pipeline import build, splits
from jaxinpaint import generated_source, input_pipeline


def _by_split(assigned: dict[str, str], persons: dict[str, str]) -> dict[str, set]:
    out = collections.defaultdict(set)
    for fid, split in assigned.items():
        out[split].add(persons[fid])
    return out


def test_a_person_never_straddles_two_splits_and_the_split_is_balanced_by_faces():
    # 30 persons: one with 20 photos, four with 5, the rest with 1; two genders.
    persons, genders = {}, {}
    sizes = [20, 5, 5, 5, 5, *[1] * 25]
    for p, n in enumerate(sizes):
        for k in range(n):
            fid = f"p{p}-{k}"
            persons[fid], genders[fid] = f"p{p}", p % 2
    assigned = splits.assign_splits(persons, genders, seed=0)
    by_split = _by_split(assigned, persons)
    assert set(by_split) == set(splits.SPLITS)
    for a, b in [("train", "test"), ("train", "validation"), ("validation", "test")]:
        assert not by_split[a] & by_split[b]
    counts = collections.Counter(assigned.values())
    assert assigned["p0-0"] == "train"  # the person with most photos trains
    assert counts["train"] >= 0.7 * len(persons) and min(counts.values()) >= 4
    assert splits.assign_splits(persons, genders, seed=0) == assigned
    assert splits.assign_splits(persons, genders, seed=1) != assigned


def test_single_photo_persons_split_80_10_10_per_gender():
    ids = [f"f{i}" for i in range(40)]
    genders = {fid: i % 2 for i, fid in enumerate(ids)}
    assigned = splits.assign_splits({f: f for f in ids}, genders, seed=0)
    for g in (0, 1):
        got = collections.Counter(s for fid, s in assigned.items() if genders[fid] == g)
        assert got == {"train": 16, "validation": 2, "test": 2}
    three = splits.assign_splits({f: f for f in ids[:3]}, {}, seed=1)
    assert set(three.values()) == set(splits.SPLITS)


def test_generated_source_draws_train_faces_by_the_builds_person_split():
    config = tiny_config()
    config.data.source = "generated"
    faces = generated_source._load_faces(config)
    persons = {f.id: f.person_id for f in faces}
    assert len(set(persons.values())) < len(faces)  # the sample set repeats persons
    chosen = {s: generated_source.split_faces(config, s) for s in splits.SPLITS}
    by_split = {s: {f.person_id for f in fs} for s, fs in chosen.items()}
    assert not by_split["train"] & (by_split["validation"] | by_split["test"])
    assert not by_split["validation"] & by_split["test"]
    # The same rule as the dataset build with --seed=config.data.split_seed.
    built = build.assign_splits(persons, {f.id: f.gender for f in faces}, config.data.split_seed)
    assert {f.id for f in chosen["train"]} == {f for f, s in built.items() if s == "train"}
    assert input_pipeline.training_faces(config) == {f.id: f.person_id for f in chosen["train"]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A built set of 6 photos of 3 persons (CelebA's identity file says who is who)."""
    root = tmp_path_factory.mktemp("persons")
    faces = root / "faces"
    faces.mkdir()
    lines = []
    for i, path in enumerate(detectable_sample_faces(6)):
        Image.open(path).save(faces / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {i // 2}")
    (faces / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    build.build_dataset(str(faces), str(root / "data"), size=48, progress=False)
    return root / "data"


def test_built_dataset_splits_by_person(dataset):
    rows = [json.loads(r) for r in (dataset / "pairs" / "index.jsonl").read_text().splitlines()]
    assert {r["person"] for r in rows} == {"celeba-0", "celeba-1", "celeba-2"}
    split_of = collections.defaultdict(set)
    for r in rows:
        split_of[r["person"]].add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == set(splits.SPLITS)


def test_evaluate_refuses_a_split_that_shares_a_person_with_training(dataset, tmp_path):
    test_faces = splits.read_index_faces(str(dataset), "test")
    # A run that trained on one photo of a test person (not the same photo).
    person = next(iter(test_faces.values()))
    splits.write_record(str(tmp_path), "tfds", {"another-photo": person})
    proc = subprocess.run(
        [
            sys.executable,
            "launch/evaluate.py",
            f"--workdir={tmp_path}",
            f"--dataset={dataset}",
            "--split=test",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "would not be honest" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "eval").exists()
