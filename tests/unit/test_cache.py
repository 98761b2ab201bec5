"""The per-unit result cache: a real SQLite file, its bound, its sharing, and what a unit's key reads."""

import dataclasses
import multiprocessing
from pathlib import Path

import pytest

from kiskadee import config
from kiskadee.analysis.cache import TreeFiles, UnitCache, open_cache, unit_key
from kiskadee.errors import ConfigError

PAYLOAD = {"findings": [{"path": "a.c", "line": 3, "message": "x" * 200}]}


def test_entries_survive_closing_and_reopening(tmp_path):
    cache = UnitCache(str(tmp_path / "cache.db"), 1 << 20)
    cache.put_many("flawfinder", {"k1": PAYLOAD, "k2": {"findings": []}})
    cache.close()
    again = UnitCache(str(tmp_path / "cache.db"), 1 << 20)
    assert again.get_many(["k1", "k2", "k3"]) == {"k1": PAYLOAD, "k2": {"findings": []}}


def test_past_its_bound_the_least_recently_used_entries_go(tmp_path):
    one = len(__import__("zlib").compress(__import__("json").dumps({"n": "y" * 4000}).encode()))
    cache = UnitCache(str(tmp_path / "cache.db"), max_bytes=one * 10)
    for number in range(10):
        cache.put_many("gcc", {f"k{number}": {"n": "y" * 4000}}, now=100.0 + number)
    cache.get_many(["k0", "k1"], now=200.0)             # used again: now the most recent
    cache.put_many("gcc", {"k10": {"n": "y" * 4000}}, now=300.0)
    kept = cache.get_many([f"k{number}" for number in range(11)], now=400.0)
    assert {"k0", "k1", "k10"} <= set(kept)
    assert "k2" not in kept                              # the least recently used
    entries, size = cache.size()
    assert size <= one * 10 and entries == len(kept)


def _writer(path: str, prefix: str) -> None:
    cache = UnitCache(path, 1 << 30)
    for number in range(100):
        cache.put_many("cppcheck", {f"{prefix}{number}": {"number": number}})
        cache.get_many([f"{prefix}{number}"])
    cache.close()


def test_runners_of_one_host_write_at_once_and_lose_nothing(tmp_path):
    path = str(tmp_path / "cache.db")
    UnitCache(path, 1 << 30).close()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(path, prefix)) for prefix in ("a", "b", "c")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    assert UnitCache(path, 1 << 30).size()[0] == 300


def test_a_cache_that_cannot_be_opened_is_left_out(tmp_path, caplog):
    (tmp_path / "cache.db").write_text("not a database, " * 100)
    settings = config.CacheConfig(path=str(tmp_path / "cache.db"))
    assert open_cache(settings) is None
    assert "analyzing without it" in caplog.text
    assert open_cache(config.CacheConfig(enabled=False, path=str(tmp_path / "other.db"))) is None


def test_keys_differ_by_package_tool_version_options_and_inputs():
    base = ("debian/lz4", "gcc", "12.2.0", {"warnings": ["a"]}, "lib/lz4.c", [["lib/lz4.c", "d1"]])
    keys = {unit_key(*base)}
    for position, other in enumerate(["debian/zlib", "clang", "12.3.0", {"warnings": ["b"]}, "lib/x.c",
                                      [["lib/lz4.c", "d2"]]]):
        changed = list(base)
        changed[position] = other
        keys.add(unit_key(*changed))
    assert len(keys) == 7
    assert unit_key(*base) == unit_key(*base)


def write(root: Path, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_unit_reads_every_file_its_includes_could_name(tmp_path):
    write(tmp_path, {"src/a.c": '#include "a.h"\n#include <sys/b.h>\n#include "../include/c.h"\n',
                     "src/a.h": "", "include/sys/b.h": '#  include "d.h"\n', "other/sys/b.h": "",
                     "include/c.h": "", "deep/d.h": "", "unrelated.h": "", "lib/e.c": ""})
    read = [path for path, _ in TreeFiles(tmp_path).closure("src/a.c")]
    assert read == ["deep/d.h", "include/c.h", "include/sys/b.h", "other/sys/b.h", "src/a.c", "src/a.h"]


def test_a_header_appearing_or_changing_changes_what_the_unit_reads(tmp_path):
    write(tmp_path, {"a.c": '#include "config.h"\n#if defined(X)\n# include "x.h"\n#endif\n', "x.h": "1"})
    before = TreeFiles(tmp_path).closure("a.c")
    write(tmp_path, {"x.h": "2"})
    changed = TreeFiles(tmp_path).closure("a.c")
    write(tmp_path, {"sub/config.h": ""})
    appeared = TreeFiles(tmp_path).closure("a.c")
    assert len({repr(before), repr(changed), repr(appeared)}) == 3


def test_a_computed_include_makes_the_unit_read_the_whole_tree(tmp_path):
    write(tmp_path, {"a.c": "#include HEADER\n", "b.h": "", "c/d.txt": ""})
    assert [path for path, _ in TreeFiles(tmp_path).closure("a.c")] == ["a.c", "b.h", "c/d.txt"]
    write(tmp_path, {"a.c": "#include_next <b.h>\n"})
    assert [path for path, _ in TreeFiles(tmp_path).closure("a.c")] == ["a.c", "b.h"]


def test_the_cache_lives_beside_the_database_unless_configured(tmp_path):
    settings = config.from_mapping({"database": {"path": str(tmp_path / "db" / "k.db")}})
    assert settings.analysis.cache.path == str(tmp_path / "db" / "cache.db")
    assert settings.analysis.cache.enabled and settings.analysis.cache.max_mb == 1024
    moved = config.from_mapping({"analysis": {"cache": {"path": "/srv/c.db", "max_mb": 10, "enabled": False}}})
    assert moved.analysis.cache == config.CacheConfig(enabled=False, path="/srv/c.db", max_mb=10)
    with pytest.raises(ConfigError, match="analysis.cache.size"):
        config.from_mapping({"analysis": {"cache": {"size": 1}}})
    with pytest.raises(ConfigError, match="at least 1"):
        config.from_mapping({"analysis": {"cache": {"max_mb": 0}}})


def test_analyze_with_db_keeps_its_cache_beside_that_database(tmp_path):
    from argparse import Namespace

    from kiskadee.cli.common import with_database
    from kiskadee.config import Config

    moved = with_database(Namespace(db=str(tmp_path / "elsewhere" / "k.db")), Config())
    assert moved.analysis.cache.path == str(tmp_path / "elsewhere" / "cache.db")
    chosen = Config(analysis=dataclasses.replace(Config().analysis, cache=dataclasses.replace(
        Config().analysis.cache, path=str(tmp_path / "mine.db"))))
    assert with_database(Namespace(db=str(tmp_path / "k.db")), chosen).analysis.cache.path == str(tmp_path / "mine.db")
