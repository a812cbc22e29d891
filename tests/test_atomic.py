"""data_pipeline.atomic: a file or folder appears whole or not at all, with the umask's mode."""

import os
import stat

import pytest

from data_pipeline import atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_gets_the_umask_mode_and_nothing_is_left_on_error(tmp_path, umask_027):
    atomic.write_text(tmp_path / "a.json", "{}")
    assert mode(tmp_path / "a.json") == 0o640  # not mkstemp's 0600
    with pytest.raises(RuntimeError), atomic.open_atomic(tmp_path / "b.json") as f:
        f.write("half")
        raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_folder_replaces_the_old_one_only_when_complete(tmp_path, umask_027):
    out = tmp_path / "out"
    with atomic.folder(out) as tmp:
        open(os.path.join(tmp, "old.txt"), "w").close()
    assert mode(out) == 0o750  # not mkdtemp's 0700
    with pytest.raises(RuntimeError), atomic.folder(out) as tmp:
        open(os.path.join(tmp, "new.txt"), "w").close()
        raise RuntimeError
    assert os.listdir(out) == ["old.txt"]  # the interrupted write changed nothing
    with atomic.folder(out) as tmp:
        open(os.path.join(tmp, "new.txt"), "w").close()
        assert os.listdir(out) == ["old.txt"]  # readers see the old folder until the end
    assert os.listdir(out) == ["new.txt"]  # replaced whole, not merged
    assert os.listdir(tmp_path) == ["out"]  # no temporary or old folder left beside it
