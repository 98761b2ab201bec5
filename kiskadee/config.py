"""Configuration: every default in one place, loaded from TOML.

The file is looked up from ``--config``, then ``$KISKADEE_CONFIG``, then
``/etc/kiskadee/kiskadee.toml``; with none of them the built-in defaults
apply. An unknown key or a value of the wrong type is a ``ConfigError`` that
names the file, the key and what is allowed.
"""

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from kiskadee.errors import ConfigError

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

SYSTEM_CONFIG = Path("/etc/kiskadee/kiskadee.toml")
ENV_CONFIG = "KISKADEE_CONFIG"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_database_path() -> str:
    """Where the database lives when nothing says otherwise."""
    return str(_data_home() / "kiskadee" / "kiskadee.db")


@dataclasses.dataclass(frozen=True)
class DatabaseConfig:
    path: str = dataclasses.field(default_factory=default_database_path)
    busy_timeout_ms: int = 10_000


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    analyzers: Tuple[str, ...] = ("cppcheck", "flawfinder")
    timeout: float = 1800.0             # seconds per analyzer run
    memory_limit_mb: int = 4096         # address space per analyzer run
    max_output_bytes: int = 256 * 1024**2
    work_dir: str = ""                  # '' means the system's temporary directory
    max_unpacked_bytes: int = 4 * 1024**3
    max_files: int = 200_000
    max_download_bytes: int = 1024**3
    download_timeout: float = 300.0


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    backend: str = "local"


@dataclasses.dataclass(frozen=True)
class CppcheckConfig:
    program: str = "cppcheck"
    enable: str = "warning,style,performance,portability"
    jobs: int = 1
    extra_args: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FlawfinderConfig:
    program: str = "flawfinder"
    min_level: int = 1


@dataclasses.dataclass(frozen=True)
class AnalyzersConfig:
    cppcheck: CppcheckConfig = CppcheckConfig()
    flawfinder: FlawfinderConfig = FlawfinderConfig()


@dataclasses.dataclass(frozen=True)
class Config:
    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    analysis: AnalysisConfig = AnalysisConfig()
    sandbox: SandboxConfig = SandboxConfig()
    analyzers: AnalyzersConfig = AnalyzersConfig()
    source: str = "built-in defaults"   # where this configuration came from


def find_config_file(explicit: Optional[str] = None) -> Optional[Path]:
    """The configuration file to read, by the documented order, or None."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load(explicit: Optional[str] = None) -> Config:
    """Load the configuration by the documented lookup order."""
    path = find_config_file(explicit)
    if path is None:
        return Config()
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    return from_mapping(data, str(path))


def from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> Config:
    """Build a Config from parsed TOML, checking every key and type."""
    values = _build_fields(Config, data, source, prefix="")
    return Config(source=source, **values)


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{prefix}' must be a table")
    return cls(**_build_fields(cls, data, source, prefix))


def _build_fields(cls: type, data: Mapping[str, Any], source: str, prefix: str) -> Dict[str, Any]:
    hints = typing.get_type_hints(cls)
    settable = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    values = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in settable:
            raise ConfigError(
                f"{source}: unknown key '{where}'; valid keys here: {', '.join(settable)}"
            )
        values[key] = _convert(hints[key], value, source, where)
    return values


def _convert(kind: Any, value: Any, source: str, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, source, where)
    if typing.get_origin(kind) is tuple:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{source}: '{where}' must be a list of strings, not {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"{source}: '{where}' must be of type {kind.__name__}, not {type(value).__name__} ({value!r})"
    )
