"""The file store's one-call reads give cachelib's answers, and nothing is kept in a process."""

from __future__ import annotations

import logging
import os
import struct
import time
from typing import Any

import pytest
from cachelib import FileSystemCache

from flask_toucan.filestore import FileStore
from flask_toucan.store import make_store


def _pair(path: Any) -> tuple[FileStore, FileSystemCache]:
    return (
        FileStore(str(path), threshold=10_000, default_timeout=0, mode=0o600),
        FileSystemCache(str(path), threshold=10_000, default_timeout=0, mode=0o600),
    )


def test_make_store_uses_it(tmp_path: Any) -> None:
    assert isinstance(make_store(f"file://{tmp_path}").inner, FileStore)


@pytest.mark.parametrize(
    "value",
    [
        '["https://idp.example","alice"]',
        {"value": "eyJ...", "exp": 1.5e9, "serve_until": 1.5e9, "claims": {"a": [1, 2]}},
        b"raw",
        0,
        "x" * 200_000,  # over one read: the rest is read on
    ],
)
def test_reads_what_cachelib_reads(tmp_path: Any, value: Any) -> None:
    ours, theirs = _pair(tmp_path)
    theirs.set("sid:k", value)
    assert ours.get("sid:k") == theirs.get("sid:k") == value
    assert ours.get_many("sid:k", "tok:missing") == [value, None]


def test_missing_and_expired_are_misses(tmp_path: Any) -> None:
    ours, theirs = _pair(tmp_path)
    assert ours.get("nope") is None
    theirs.set("old", "v", timeout=1)
    with open(theirs._get_filename("old"), "r+b") as fh:  # expired a minute ago
        fh.write(struct.pack("I", int(time.time()) - 60))
    assert ours.get("old") is None and theirs.get("old") is None
    theirs.set("forever", "v", timeout=0)
    assert ours.get("forever") == "v"


def test_another_workers_write_and_delete_are_seen_at_once(tmp_path: Any) -> None:
    """No per-process copy: a logout (delete) or a new record by another process sticks at once."""
    ours, other = _pair(tmp_path)
    other.set("sid:abc", "alice")
    assert ours.get("sid:abc") == "alice"
    other.set("sid:abc", "bob")
    assert ours.get("sid:abc") == "bob"
    other.delete("sid:abc")
    assert ours.get("sid:abc") is None
    assert ours.get_many("sid:abc") == [None]


@pytest.mark.parametrize("content", [b"", b"\x00\x00", struct.pack("I", 0) + b"\x80\x05not a pickle"])
def test_broken_files_are_logged_misses(tmp_path: Any, caplog: Any, content: bytes) -> None:
    ours, theirs = _pair(tmp_path)
    theirs.set("sid:k", "v")
    with open(theirs._get_filename("sid:k"), "wb") as fh:
        fh.write(content)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        assert ours.get("sid:k") is None
    assert "file store entry" in caplog.text


def test_unreadable_file_is_a_logged_miss(tmp_path: Any, caplog: Any, monkeypatch: Any) -> None:
    ours, theirs = _pair(tmp_path)
    theirs.set("sid:k", "v")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("flask_toucan.filestore.os.read", broken)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        assert ours.get("sid:k") is None
    assert "could not read" in caplog.text


def test_permission_error_falls_back_to_cachelibs_retrying_read(tmp_path: Any, monkeypatch: Any) -> None:
    ours, theirs = _pair(tmp_path)
    theirs.set("sid:k", "v")
    real_open = os.open
    calls = []

    def refuse_once(path: str, flags: int, *args: Any) -> int:
        calls.append(path)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr("flask_toucan.filestore.os.open", refuse_once)
    assert ours.get("sid:k") == "v"
    assert calls == [theirs._get_filename("sid:k")]


def test_file_names_are_cachelibs_for_every_key(tmp_path: Any) -> None:
    """The remembered names are what cachelib computes; a non-text key still fails as it does."""
    ours, theirs = _pair(tmp_path)
    keys = [f"sid:{i}" for i in range(50)] + ["tok:é", "tok:" + "x" * 300]
    for _ in range(2):
        for key in keys:
            assert ours._get_filename(key) == theirs._get_filename(key)
    for key in keys:  # a write by one and a read by the other meet in the same file
        theirs.set(key, key)
        assert ours.get(key) == key
    with pytest.raises(TypeError):
        ours._get_filename(b"bytes")  # type: ignore[arg-type]
