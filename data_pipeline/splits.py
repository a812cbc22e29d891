"""Train / validation / test splits by person, the one rule every data source uses.

All faces of one person share a split, so no evaluation ever scores a person that training saw.
Who is who comes from the source: the sample set's `persons.json` (grouped by eye), CelebA's
identity file, and otherwise each photo is its own person. The split is stratified by gender
where labelled and balanced by faces, not persons: one person with many photos must not make the
test split a portrait of them.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os

from data_pipeline import atomic

SPLITS = ("train", "validation", "test")
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
_FIRST = ("train", "test", "validation")  # where the three largest persons go
RECORD = "train_faces.json"  # what a training run saw, in its workdir


def assign_splits(persons: dict[str, str], genders: dict[str, int], seed: int) -> dict[str, str]:
    """face id -> "train" | "validation" | "test".

    Persons are taken largest first (ties in a seeded hash order); the first three go to train,
    test and validation, so three persons already fill every split, and each later one to the
    split furthest below its share of the faces of the person's gender stratum (-1 = unknown;
    a person's stratum is that of their first face).
    """
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for fid in sorted(persons):
        groups[persons[fid]].append(fid)
    stratum = {person: genders.get(fids[0], -1) for person, fids in groups.items()}

    def order(person: str) -> tuple[int, str]:
        return -len(groups[person]), hashlib.sha1(f"{seed}:{person}".encode()).hexdigest()

    counts: dict[int, dict[str, int]] = collections.defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    out = {}
    for i, person in enumerate(sorted(groups, key=order)):
        n, mine = len(groups[person]), counts[stratum[person]]
        if i < len(_FIRST):
            split = _FIRST[i]
        else:
            total = sum(mine.values()) + n
            split = max(SPLITS, key=lambda s: FRACTIONS[s] * total - mine[s])
        mine[split] += n
        out.update(dict.fromkeys(groups[person], split))
    return out


def faces_of_split(faces: list, split: str, seed: int) -> list:
    """The faces (data_pipeline.faces.Face) that `assign_splits` puts in `split`, in their order:
    the same split as `launch/build_dataset.py --seed=seed` over the same faces."""
    assigned = assign_splits(
        {f.id: f.person_id for f in faces}, {f.id: f.gender for f in faces}, seed
    )
    return [f for f in faces if assigned[f.id] == split]


def write_record(workdir: str, source: str, faces: dict[str, str]) -> str:
    """Writes `<workdir>/train_faces.json`: the face ids (and their persons) training drew from."""
    path = os.path.join(workdir, RECORD)
    record = {"source": source, "faces": dict(sorted(faces.items()))}
    atomic.write_text(path, json.dumps(record, indent=1))
    return path


def read_record(workdir: str) -> dict[str, str] | None:
    """face id -> person that the run in `workdir` trained on; None when it recorded nothing."""
    path = os.path.join(workdir, RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)["faces"]


def overlap(trained: dict[str, str], scored: dict[str, str]) -> tuple[list[str], list[str]]:
    """(face ids, persons) that a scored split shares with the training faces."""
    faces = sorted(set(trained) & set(scored))
    persons = sorted(set(trained.values()) & set(scored.values()))
    return faces, persons


def read_index_faces(dataset_dir: str, split: str) -> dict[str, str]:
    """face id -> person of one split of a `launch/build_dataset.py` output (its index.jsonl)."""
    path = os.path.join(dataset_dir, "pairs", "index.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: expected the --out folder of the dataset build")
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["split"] == split:
                out[row["face_id"]] = row.get("person", row["face_id"])
    return out
