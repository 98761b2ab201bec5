import pytest

from kiskadee import config
from kiskadee.config import from_mapping
from kiskadee.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "kiskadee.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_file(monkeypatch, tmp_path):
    monkeypatch.delenv("KISKADEE_CONFIG", raising=False)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    settings = config.load()
    assert settings.source == "built-in defaults"
    assert settings.analysis.analyzers == ("cppcheck", "flawfinder")
    assert settings.sandbox.backend == "local"


def test_values_from_file_override_defaults(tmp_path):
    path = write(tmp_path, '[database]\npath = "/srv/k.db"\n[analysis]\ntimeout = 60\n'
                           'analyzers = ["cppcheck"]\n[analyzers.flawfinder]\nmin_level = 3\n')
    settings = config.load(str(path))
    assert settings.database.path == "/srv/k.db"
    assert settings.analysis.timeout == 60.0 and isinstance(settings.analysis.timeout, float)
    assert settings.analysis.analyzers == ("cppcheck",)
    assert settings.analyzers.flawfinder.min_level == 3
    assert settings.analyzers.cppcheck.program == "cppcheck"   # untouched default
    assert settings.source == str(path)


def test_lookup_order_explicit_then_environment(monkeypatch, tmp_path):
    # sandbox.backend takes only known backends now; the file read shows in another free-text key.
    from_env = write(tmp_path, '[database]\npath = "env"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[database]\npath = "explicit"\n')
    monkeypatch.setenv("KISKADEE_CONFIG", str(from_env))
    assert config.load().database.path == "env"
    assert config.load(str(explicit)).database.path == "explicit"


def test_unknown_key_names_file_key_and_valid_keys(tmp_path):
    path = write(tmp_path, "[analysis]\ntimeoutt = 5\n")
    with pytest.raises(ConfigError) as error:
        config.load(str(path))
    message = str(error.value)
    assert str(path) in message
    assert "'analysis.timeoutt'" in message
    assert "timeout" in message and "memory_limit_mb" in message


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'databse'"):
        config.load(str(write(tmp_path, "[databse]\npath = 'x'\n")))


@pytest.mark.parametrize("text, key, expected", [
    ('[analysis]\ntimeout = "long"\n', "analysis.timeout", "float"),
    ("[analysis]\nmax_files = true\n", "analysis.max_files", "int"),
    ('[analysis]\nanalyzers = "cppcheck"\n', "analysis.analyzers", "list of strings"),
    ("database = 3\n", "database", "table"),
])
def test_wrong_type_names_key_and_allowed_type(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as error:
        config.load(str(write(tmp_path, text)))
    assert f"'{key}'" in str(error.value) and expected in str(error.value)


def test_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        config.load(str(write(tmp_path, "[analysis\n")))
    with pytest.raises(ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.toml"))


def test_shipped_configuration_is_valid_and_documents_every_key():
    """packaging/kiskadee.toml loads, and names every key kiskadee knows (set or in a comment)."""
    import dataclasses
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "packaging" / "kiskadee.toml"
    settings = config.load(str(shipped))
    assert settings.database.path == "/var/lib/kiskadee/kiskadee.db"
    text = shipped.read_text()

    def keys(cls, prefix):
        for field in dataclasses.fields(cls):
            if field.name == "source":
                continue
            kind = field.type if isinstance(field.type, type) else None
            if kind is not None and dataclasses.is_dataclass(kind):
                yield from keys(kind, f"{prefix}{field.name}.")
            else:
                yield prefix, field.name

    undocumented = [f"{section}{name}" for section, name in keys(config.Config, "")
                    if f"[{section.rstrip('.')}]" not in text or f"{name} =" not in text]
    assert undocumented == []


def test_a_database_url_selects_a_server_and_the_cache_goes_to_the_state_directory():
    settings = from_mapping({"database": {"url": "postgresql://kiskadee@/kiskadee?host=/run/postgresql"},
                             "service": {"state_dir": "/srv/kiskadee"}})
    assert settings.database.location == "postgresql://kiskadee@/kiskadee?host=/run/postgresql"
    assert settings.analysis.cache.path == "/srv/kiskadee/cache.db"
    beside = from_mapping({"database": {"url": "sqlite:///srv/k.db"}})
    assert beside.database.location == "sqlite:///srv/k.db" and beside.analysis.cache.path == "/srv/cache.db"


def test_a_database_url_of_another_kind_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"'database.url' must start with postgresql://, postgres://, sqlite:///"):
        from_mapping({"database": {"url": "mysql://db/kiskadee"}})
