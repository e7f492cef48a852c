"""The pinned sdists: the lock, the cache, and hash checks that fail loudly."""

from __future__ import annotations

import shutil

import pytest

from debuglab.core.kit import cache_dir
from debuglab.lab import upstream
from debuglab.lab.errors import UpstreamError


def test_the_lock_pins_nova_and_novaclient(projects):
    assert projects["nova"].version == "34.0.0"
    assert projects["python-novaclient"].version == "18.13.1"
    assert projects["nova"].hidden_tests_dir == "nova/tests/unit/debuglab_hidden"


def test_a_lock_entry_missing_a_field_is_named(tmp_path):
    lock = tmp_path / "upstream.lock"
    lock.write_text('[projects.nova]\nversion = "34.0.0"\n')
    with pytest.raises(UpstreamError, match=r"\[projects.nova\] lacks sdist, sha256, package, unit_tests"):
        upstream.load_lock(lock)


def test_the_cached_sdist_matches_its_hash_and_unpacks_with_pkg_info(projects, tmp_path):
    project = projects["python-novaclient"]
    sdist = upstream.fetch(project, cache_dir())
    assert upstream.sha256_of(sdist) == project.sha256
    tree = upstream.extract(project, sdist, tmp_path / "nc")
    assert upstream.checkout_version(tree) == ("python-novaclient", "18.13.1")
    assert (tree / "novaclient" / "tests" / "unit").is_dir(), "sdists carry the tests"


def test_a_corrupt_sdist_is_refused_with_both_hashes(projects, tmp_path):
    project = projects["python-novaclient"]
    bad = tmp_path / project.sdist
    data = bytearray(upstream.fetch(project, cache_dir()).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(UpstreamError) as caught:
        upstream.extract(project, bad, tmp_path / "tree")
    assert project.sha256 in str(caught.value) and str(bad) in str(caught.value)
    assert not (tmp_path / "tree").exists()
    assert [p.name for p in tmp_path.iterdir()] == [project.sdist], "no half-unpacked tree is left"


def test_a_corrupt_cache_entry_is_set_aside_and_fetched_again(projects, tmp_path):
    project = projects["python-novaclient"]
    cache = tmp_path / "cache"
    (cache / "sdists").mkdir(parents=True)
    (cache / "sdists" / project.sdist).write_bytes(b"truncated download")
    fetched = upstream.fetch(project, cache)  # downloads with pip, by name and version
    assert upstream.sha256_of(fetched) == project.sha256
    assert (cache / "sdists" / (project.sdist + ".corrupt")).read_bytes() == b"truncated download"


def test_a_lock_that_pins_another_hash_fails_the_download(projects, tmp_path):
    wrong = upstream.Project(**{**projects["python-novaclient"].__dict__, "sha256": "0" * 64})
    with pytest.raises(UpstreamError, match="does not match the lock's 0000"):
        upstream.fetch(wrong, tmp_path / "cache")
    assert list((tmp_path / "cache" / "sdists").iterdir()) == [], "nothing unverified enters the cache"


def test_copy_tree_hard_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    upstream.copy_tree(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b" / "f").stat().st_ino == (tmp_path / "a" / "f").stat().st_ino
    shutil.rmtree(tmp_path / "b")
