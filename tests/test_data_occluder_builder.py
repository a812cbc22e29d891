"""The occluder-library builder: writes every category, records sources, keeps users' PNGs."""

import json
import os

import numpy as np
from PIL import Image

from data_pipeline import occluder_builder, occluders
from data_pipeline.categories import CATEGORIES


def test_builder_writes_all_categories_and_keeps_user_pngs(tmp_path):
    out = str(tmp_path / "lib")
    messages = []
    counts = occluder_builder.build(out, log=messages.append)
    assert set(counts) == set(CATEGORIES)
    # the procedural drawers alone cover these, with or without the Debian packages
    for cat in ("mask", "scarf", "cigarette", "mic", "sunglasses"):
        assert counts[cat] >= 2, cat
    with open(os.path.join(out, occluder_builder.SOURCES_FILE), encoding="utf-8") as f:
        sources = json.load(f)
    assert sum(counts.values()) == len(sources)
    assert all(v["license"] for v in sources.values())

    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[5:25, 5:25] = (0, 200, 0, 255)
    Image.fromarray(rgba).save(os.path.join(out, "cup", "mine.png"))
    again = occluder_builder.build(out, log=messages.append)
    assert again["cup"] == counts["cup"] + 1
    lib = occluders.OccluderLibrary.load(out)
    assert "cup/mine.png" in [o.name for o in lib.items["cup"]]
    for occs in lib.items.values():
        for occ in occs:
            assert occ.rgba.shape[0] <= occluder_builder.MAX_SIDE
            assert occ.rgba.shape[1] <= occluder_builder.MAX_SIDE
