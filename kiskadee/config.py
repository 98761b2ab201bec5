"""Configuration: every default in one place, loaded from TOML.

The file is looked up from ``--config``, then ``$KISKADEE_CONFIG``, then
``/etc/kiskadee/kiskadee.toml``; with none of them the built-in defaults
apply. An unknown key, a value of the wrong type or, for an enumerated key
(an analyzer, the sandbox backend, a policy, a mode), a value it cannot take
is a ``ConfigError`` that names the file, the key and what is allowed: every
command and service stops on it when it loads the file, not when it first
uses the value.
"""

import dataclasses
import os
import pwd
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

# The values an enumerated key may take; checked when the file is loaded.
SANDBOX_BACKENDS = ("local", "docker")         # sandbox.backend
COMPILED_MODES = ("auto", "per-file")          # analyzers.{clang,gcc,framac}.mode
ANALYZE_POLICIES = ("newest", "every")         # monitor.analyze


def _choice(default: Any, valid: Tuple[str, ...]) -> Any:
    """A field whose value (or each item of it, for a list) must be one of ``valid``."""
    return dataclasses.field(default=default, metadata={"valid": valid})


def _data_home() -> Path:
    """$XDG_DATA_HOME, else ~/.local/share (relative values are ignored, as the XDG spec says)."""
    data_home = os.environ.get("XDG_DATA_HOME", "")
    return Path(data_home) if os.path.isabs(data_home) else _home() / ".local" / "share"


def _home() -> Path:
    """$HOME, else the user's home in the password database (systemd units and cron may leave HOME unset)."""
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return Path(home)
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:   # a uid with no entry, as in some containers
        home = ""
    if os.path.isabs(home):
        return Path(home)
    raise ConfigError(f"no home directory for the default paths: $HOME is not set and user {os.getuid()} has "
                      "none in the password database; set HOME or XDG_DATA_HOME, or set database.path and "
                      "service.state_dir in the configuration")


def default_database_path() -> str:
    """Where the database lives when nothing says otherwise."""
    return str(Path(os.environ.get("STATE_DIRECTORY") or _data_home() / "kiskadee") / "kiskadee.db")


DATABASE_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")


def is_server(location: str) -> bool:
    """Whether a database location (a path, or a URL as in database.url) names a database server."""
    return location.startswith(("postgresql://", "postgres://"))


def sqlite_path(location: str) -> str:
    """The file an SQLite location names: a path, or sqlite:///PATH."""
    return location.removeprefix("sqlite://")


def default_cache_path(database_location: str, state_dir: str) -> str:
    """The analysis cache's file: cache.db beside the database, or in ``state_dir`` for a database server."""
    if is_server(database_location):
        return str(Path(state_dir) / "cache.db")
    return str(Path(sqlite_path(database_location)).parent / "cache.db")


def default_state_dir() -> str:
    """Where fetchers remember what they saw: systemd's StateDirectory, else the XDG data home."""
    return os.environ.get("STATE_DIRECTORY") or str(_data_home() / "kiskadee")


def default_runtime_dir() -> str:
    """Where the sockets live: systemd's RuntimeDirectory, else $XDG_RUNTIME_DIR, else /tmp."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        return os.environ["RUNTIME_DIRECTORY"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return str(Path(os.environ["XDG_RUNTIME_DIR"]) / "kiskadee")
    return f"/tmp/kiskadee-{os.getuid()}"


@dataclasses.dataclass(frozen=True)
class DatabaseConfig:
    path: str = dataclasses.field(default_factory=default_database_path)
    # A database server instead of the SQLite file at path: postgresql://USER@HOST/NAME (libpq's URL
    # form, ?host=/run/postgresql for a unix socket); sqlite:///PATH names a file as path does.
    url: str = dataclasses.field(default="", metadata={"schemes": DATABASE_SCHEMES})
    busy_timeout_ms: int = 10_000

    @property
    def location(self) -> str:
        """Where the database is: the url if one is set, else the SQLite file's path."""
        return self.url or self.path


@dataclasses.dataclass(frozen=True)
class DockerSandboxConfig:
    """The docker backend (kiskadee.analysis.sandbox.docker) and its images (kiskadee images)."""

    url: str = ""                       # engine address; '' means $DOCKER_HOST, else the local socket
    image: str = "kiskadee/{analyzer}:latest"   # the image each analyzer runs in
    base_image: str = "debian:bookworm-slim"    # what 'kiskadee images build' builds the images from
    user: str = ""                      # uid:gid in the container; '' means the runner's, 65534 for root
    cpus: float = 1.0                   # CPUs each container may use
    pids_limit: int = 256               # processes and threads each container may have
    tmpfs_mb: int = 256                 # size of the container's writable /tmp
    api_timeout: float = 60.0           # seconds an engine request may take (not the analysis)
    containers_dir: str = ""            # '' means the Containerfile shipped with kiskadee
    bootstrap_suite: str = "bookworm"   # 'kiskadee images base': the Debian suite
    bootstrap_mirror: str = ""          # '' means the first mirror in apt's sources


@dataclasses.dataclass(frozen=True)
class LocalSandboxConfig:
    """The local backend (kiskadee.analysis.sandbox.local): subprocesses on the runner's own machine."""

    user: str = "nobody"                # who runs the analyzers when the runner is root
    build_on_host: bool = False         # let build mode run the package's configure/make/cmake/meson here


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    backend: str = _choice("local", SANDBOX_BACKENDS)
    local: LocalSandboxConfig = LocalSandboxConfig()
    docker: DockerSandboxConfig = DockerSandboxConfig()


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
class CompiledAnalyzerConfig:
    """Settings shared by the analyzers that compile the code (clang, gcc, framac)."""

    program: str = ""
    mode: str = _choice("auto", COMPILED_MODES)  # 'auto': build mode when the tree configures, else per-file
    jobs: int = 1                       # files analyzed at once (and make -j in build mode)
    unit_timeout: float = 300.0         # seconds per file; 0: none but the analyzer's timeout
    configure_timeout: float = 300.0    # seconds for configure, cmake or meson in build mode
    build_timeout: float = 900.0        # seconds for make in autotools build mode
    time_budget: float = 0.0            # seconds after which no new file is started; 0: none
    python: str = "python3"             # the interpreter that runs the compile driver in the sandbox
    extra_args: Tuple[str, ...] = ()    # passed to the tool for every file


@dataclasses.dataclass(frozen=True)
class ClangConfig(CompiledAnalyzerConfig):
    program: str = "clang"
    checkers: Tuple[str, ...] = ("alpha.security.ArrayBoundV2", "alpha.unix.cstring.OutOfBounds")


@dataclasses.dataclass(frozen=True)
class GccConfig(CompiledAnalyzerConfig):
    program: str = "gcc"
    warnings: Tuple[str, ...] = (       # compiler warnings kept as findings besides -Wanalyzer-*
        "stringop-overflow", "array-bounds", "stringop-overread", "use-after-free",
        "free-nonheap-object", "mismatched-dealloc", "return-local-addr", "format-overflow")


@dataclasses.dataclass(frozen=True)
class FramacConfig(CompiledAnalyzerConfig):
    program: str = "frama-c"
    unit_timeout: float = 60.0
    time_budget: float = 600.0
    max_entry_points: int = 20          # Eva runs per file, one from each uncalled function


@dataclasses.dataclass(frozen=True)
class AnalyzersConfig:
    cppcheck: CppcheckConfig = CppcheckConfig()
    flawfinder: FlawfinderConfig = FlawfinderConfig()
    clang: ClangConfig = ClangConfig()
    gcc: GccConfig = GccConfig()
    framac: FramacConfig = FramacConfig()


# The analyzers kiskadee knows: those with a section above.
ANALYZERS = tuple(field.name for field in dataclasses.fields(AnalyzersConfig))


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    """The per-unit result cache (kiskadee.analysis.cache): unchanged files are not analyzed again."""

    enabled: bool = True
    path: str = ""                      # '' means cache.db in the database's directory
    # Past max_mb, the least recently used entries are removed.
    max_mb: int = dataclasses.field(default=1024, metadata={"minimum": 1})


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    analyzers: Tuple[str, ...] = _choice(("cppcheck", "flawfinder"), ANALYZERS)
    timeout: float = 1800.0             # seconds per analyzer run
    memory_limit_mb: int = 4096         # address space per analyzer run
    max_output_bytes: int = 256 * 1024**2
    work_dir: str = ""                  # '' means the system's temporary directory
    max_unpacked_bytes: int = 4 * 1024**3
    max_files: int = 200_000
    max_depth: int = 64                 # directory levels an archive member may be nested in
    max_download_bytes: int = 1024**3
    download_timeout: float = 300.0     # seconds each read of a download may wait
    download_deadline: float = 600.0    # seconds a whole download may take, redirects included
    cache: CacheConfig = CacheConfig()


@dataclasses.dataclass(frozen=True)
class CurveConfig:
    """CurveZMQ keys for tcp:// endpoints ('kiskadee keys'); ipc:// sockets are guarded by file modes."""

    keys_dir: str = ""                  # '' means STATE_DIR/keys: where 'kiskadee keys' writes
    monitor_secret_key: str = ""        # the monitor's key pair; '' means KEYS_DIR/monitor.key_secret
    monitor_public_key: str = ""        # how runners and senders know the monitor; '' means KEYS_DIR/monitor.key
    runners_dir: str = ""               # public keys let onto a tcp:// work socket; '' means KEYS_DIR/runners
    submitters_dir: str = ""            # public keys let onto a tcp:// intake; '' means KEYS_DIR/submitters
    runner_secret_key: str = ""         # this host's runners; '' means KEYS_DIR/runner.key_secret
    submitter_secret_key: str = ""      # submit, fetch on a tcp:// intake; '' means KEYS_DIR/submitter.key_secret
    insecure: bool = False              # allow tcp:// without keys (anyone reaching the port); warns at start


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    runtime_dir: str = dataclasses.field(default_factory=default_runtime_dir)
    state_dir: str = dataclasses.field(default_factory=default_state_dir)
    runtime_dir_owner: str = ""     # user who must own runtime_dir outside systemd; '' means whoever runs kiskadee
    intake: str = ""        # '' means ipc://RUNTIME_DIR/intake.sock; tcp://HOST:PORT needs keys (curve)
    work: str = ""          # '' means ipc://RUNTIME_DIR/work.sock; tcp://HOST:PORT needs keys (curve)
    curve: CurveConfig = CurveConfig()
    spool_dir: str = ""     # where 'submit' copies local files for the runners; '' means STATE_DIR/spool

    @property
    def spool(self) -> str:
        return self.spool_dir or os.path.join(self.state_dir, "spool")

    @property
    def intake_endpoint(self) -> str:
        return self.intake or f"ipc://{self.runtime_dir}/intake.sock"

    @property
    def work_endpoint(self) -> str:
        return self.work or f"ipc://{self.runtime_dir}/work.sock"


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    analyze: str = _choice("newest", ANALYZE_POLICIES)   # "newest" or "every" version
    lease_seconds: float = 120.0        # silence after which a runner's job is re-queued
    max_attempts: int = 3
    backoff_seconds: float = 30.0
    batch: int = 2000                   # intake events recorded per transaction, at most


def _at_least(default: Any, minimum: int) -> Any:
    """A number field that must be ``minimum`` or more."""
    return dataclasses.field(default=default, metadata={"minimum": minimum})


@dataclasses.dataclass(frozen=True)
class LimitsConfig:
    """What one message may hold (kiskadee.service.wire); anything over is rejected with the reason."""

    intake_message_bytes: int = _at_least(1024**2, 1024)    # a source event; ZeroMQ MAXMSGSIZE of the intake
    work_message_bytes: int = _at_least(64 * 1024**2, 1024)  # a result with its findings; MAXMSGSIZE of the work socket
    name_chars: int = _at_least(256, 16)        # package, fetcher, runner, analyzer names, check ids
    version_chars: int = _at_least(256, 16)     # version strings (also checked by the origin's rules)
    url_chars: int = _at_least(4096, 64)        # source URLs and local paths
    path_chars: int = _at_least(4096, 64)       # finding paths and function names
    text_chars: int = _at_least(65536, 64)      # finding messages, errors, rejection reasons
    activity_chars: int = _at_least(1024, 16)   # what a runner says it is doing
    depth: int = _at_least(32, 8)               # nesting of JSON objects and arrays


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    count: int = 0                      # runners to run ('kiskadee run', kiskadee.target); 0 means one per CPU
    heartbeat_seconds: float = 10.0

    def runners(self) -> int:
        """How many runners to run: ``count``, or one per CPU when it is 0."""
        return self.count or os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class DebianFetcherConfig:
    enabled: bool = True
    mirror: str = ""                    # '' means the first mirror in apt's sources
    suite: str = "bookworm"
    components: Tuple[str, ...] = ("main",)
    allow: Tuple[str, ...] = ("hello", "jq", "lz4", "libyaml", "zlib")   # empty: every package
    deny: Tuple[str, ...] = ()
    c_only: bool = True
    interval: float = 6 * 3600.0        # seconds between polling passes under 'kiskadee run'


@dataclasses.dataclass(frozen=True)
class DirectoryFetcherConfig:
    path: str = ""                      # '' means the directory fetcher is off
    interval: float = 60.0


@dataclasses.dataclass(frozen=True)
class AnityaFetcherConfig:
    """Resolving Anitya's announcements to sources, and filling the gaps the buses leave."""

    api_url: str = ""                   # Anitya's address for gap filling; '' means set it (off)
    projects: Tuple[str, ...] = ()      # project names to poll, besides those in the database
    interval: float = 3600.0            # seconds between gap-filling passes under 'kiskadee run'
    pypi_url: str = ""                  # PyPI JSON API base; '' means derived from pip's index
    npm_url: str = ""                   # npm registry; '' means 'npm config get registry'
    crates_index: str = ""              # sparse crate index; '' means from cargo's configuration
    github_url: str = "https://github.com"
    gitlab_url: str = "https://gitlab.com"      # used for projects on this host, or owner/repo
    gnu_url: str = "https://ftp.gnu.org/gnu"
    debian: bool = True                 # fall back to the Debian fetcher for Debian-mapped projects


@dataclasses.dataclass(frozen=True)
class FetchersConfig:
    debian: DebianFetcherConfig = DebianFetcherConfig()
    directory: DirectoryFetcherConfig = DirectoryFetcherConfig()
    anitya: AnityaFetcherConfig = AnityaFetcherConfig()


@dataclasses.dataclass(frozen=True)
class AnityaBusConfig:
    """Receiving Anitya's announcements: the fedmsg bridge and the fedora-messaging consumer."""

    topic_prefix: str = "org.release-monitoring.prod"  # environment Anitya publishes under (the bridge)
    queue_size: int = 10_000            # events the bridge holds for the monitor; beyond, dropped and counted
    max_message_bytes: int = 1024**2    # larger bus messages are dropped and counted (the bridge)
    report_seconds: float = 60.0        # how often the bridge logs what it received, forwarded and dropped
    retry_seconds: float = 5.0          # wait before retrying an unreachable monitor (both)


@dataclasses.dataclass(frozen=True)
class PublishConfig:
    """kiskadee's own events on fedora-messaging: the outbox the monitor fills, 'kiskadee publish' sends."""

    enabled: bool = False               # the monitor writes an event per stored or failed version to the outbox
    topic_prefix: str = ""              # put before every topic: 'org.example.prod' gives org.example.prod.kiskadee...
    messaging_config: str = ""          # fedora-messaging's file (broker, TLS); '' means its own lookup
    confirm_timeout: float = 10.0       # seconds a broker may stay blocked or silent before a send counts as failed
    retry_seconds: float = 5.0          # pause after the broker could not be reached or did not confirm


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """The static HTML report ('kiskadee report', the kiskadee-report timer)."""

    dir: str = ""                       # where the pages go; '' means STATE_DIR/html


@dataclasses.dataclass(frozen=True)
class RankingConfig:
    # A priors table from 'kiskadee ranking refit --output FILE'; '' is the one kiskadee ships.
    priors: str = ""


@dataclasses.dataclass(frozen=True)
class Config:
    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    analysis: AnalysisConfig = AnalysisConfig()
    sandbox: SandboxConfig = SandboxConfig()
    analyzers: AnalyzersConfig = AnalyzersConfig()
    service: ServiceConfig = dataclasses.field(default_factory=ServiceConfig)
    monitor: MonitorConfig = MonitorConfig()
    runner: RunnerConfig = RunnerConfig()
    fetchers: FetchersConfig = FetchersConfig()
    anitya: AnityaBusConfig = AnityaBusConfig()
    limits: LimitsConfig = LimitsConfig()
    ranking: RankingConfig = RankingConfig()
    report: ReportConfig = ReportConfig()
    publish: PublishConfig = PublishConfig()
    source: str = "built-in defaults"   # where this configuration came from

    def __post_init__(self) -> None:
        if not self.analysis.cache.path:    # beside the database, wherever that is
            cache = dataclasses.replace(self.analysis.cache, path=default_cache_path(self.database.location,
                                                                                   self.service.state_dir))
            object.__setattr__(self, "analysis", dataclasses.replace(self.analysis, cache=cache))


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
    settable = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    values = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in settable:
            raise ConfigError(
                f"{source}: unknown key '{where}'; valid keys here: {', '.join(settable)}"
            )
        values[key] = _convert(hints[key], value, source, where)
        _check_valid(settable[key].metadata.get("valid"), values[key], source, where)
        _check_minimum(settable[key].metadata.get("minimum"), values[key], source, where)
        _check_scheme(settable[key].metadata.get("schemes"), values[key], source, where)
    return values


def _check_scheme(schemes: Optional[Tuple[str, ...]], value: Any, source: str, where: str) -> None:
    """Refuse a URL whose scheme is not one of ``schemes`` (an empty value is no URL)."""
    if schemes is not None and value and not value.startswith(schemes):
        raise ConfigError(f"{source}: '{where}' must start with {', '.join(schemes)}, not {value!r}")


def _check_valid(valid: Optional[Tuple[str, ...]], value: Any, source: str, where: str) -> None:
    """Refuse a value outside the key's valid values, if it has any."""
    if valid is None:
        return
    if isinstance(value, tuple):
        unknown = [item for item in value if item not in valid]
        if unknown:
            raise ConfigError(f"{source}: '{where}' names {', '.join(map(repr, unknown))};"
                              f" each must be one of {', '.join(valid)}")
    elif value not in valid:
        raise ConfigError(f"{source}: '{where}' must be one of {', '.join(valid)}, not {value!r}")


def _check_minimum(minimum: Optional[int], value: Any, source: str, where: str) -> None:
    """Refuse a number below the key's minimum, if it has one."""
    if minimum is not None and value < minimum:
        raise ConfigError(f"{source}: '{where}' must be at least {minimum}, not {value!r}")


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
