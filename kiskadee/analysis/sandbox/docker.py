"""The docker backend: every analyzer command in its own hardened container, through the docker SDK.

One container per command, from the analyzer's image (``sandbox.docker.image``
with ``{analyzer}`` filled in): the source tree mounted read-only at /src, the
working directory; the output directory writable at /out; nothing else
writable but a small /tmp. No network, a non-root user, every capability
dropped, no-new-privileges, a read-only root file system, memory, process
and CPU limits, a file-size limit that caps every file the command writes,
and a wall-clock timeout after which the container is killed. The container
is removed whatever happens; one left behind by a killed runner or a stopped
engine is removed the next time a runner connects.

The command's stdout and stderr go to files in the output directory
(``sh -c 'exec "$@" >/out/stdout 2>/out/stderr'``): the engine keeps no logs
and the size limit applies to them as well. An image therefore needs
``/bin/sh``; the ones under ``packaging/containers`` have it.

An engine that cannot be reached raises SandboxUnavailable, a transient
failure: the runner sends the job back to the queue rather than failing it.
"""

import contextlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

from kiskadee.analysis.sandbox.base import Execution, Limits, Sandbox
from kiskadee.config import DockerSandboxConfig
from kiskadee.errors import AnalyzerUnavailable, ConfigError, SandboxUnavailable

log = logging.getLogger(__name__)

SOURCE_DIR = "/src"
OUTPUT_DIR = "/out"
BUILD_DIR = "/build"        # the build every compiled analyzer of a tree shares
LABEL = "org.kiskadee.sandbox"              # on every container kiskadee starts: the analyzer
DEADLINE_LABEL = "org.kiskadee.deadline"    # epoch seconds after which a running one is an orphan
REDIRECT = f'exec "$@" >{OUTPUT_DIR}/stdout 2>{OUTPUT_DIR}/stderr'
NOBODY = "65534:65534"
GRACE_SECONDS = 120
TAIL_BYTES = 4000
STATUS_NOT_FOUND = 127                      # sh: the program is not in the image
STATUS_KILLED = 128 + 9
STATUS_FILE_TOO_LARGE = 128 + 25            # SIGXFSZ: over the output size limit


class Engine:
    """One connection to a docker engine, shared by the sandboxes of every analyzer."""

    def __init__(self, config: DockerSandboxConfig):
        self.config = config
        self._client = None
        self._running: "set[str]" = set()
        self._orphans: "set[str]" = set()      # names of containers it may have left: removed on reconnecting
        self._lock = threading.RLock()

    @property
    def address(self) -> str:
        return self.config.url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def client(self):
        """The SDK client, connecting (and removing containers left behind) on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self):
        import docker

        with self.errors("connecting"):
            client = docker.DockerClient(base_url=self.address, version="auto",
                                         timeout=int(self.config.api_timeout))
            self.reap(client)
        log.info("connected to the container engine at %s", self.address)
        return client

    def forget(self) -> None:
        """Drop the connection after a failure; the next use connects again."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):   # closing a dead connection: nothing to report
                client.close()

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn the SDK's failures into kiskadee's: unreachable engine, refused request."""
        import docker.errors
        import requests

        try:
            yield
        except docker.errors.ImageNotFound:
            raise
        except docker.errors.APIError as exc:
            if exc.is_server_error() or exc.status_code == 404:
                self.forget()
                raise SandboxUnavailable(f"the container engine failed {doing}: {exc.explanation}") from None
            raise ConfigError(f"the container engine refused {doing}: {exc.explanation} "
                              "(check the [sandbox.docker] settings)") from None
        except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
            self.forget()
            raise SandboxUnavailable(
                f"the container engine at {self.address} cannot be reached ({doing}): {exc}") from None

    def reap(self, client) -> None:
        """Remove the containers left behind: this runner's, and any of kiskadee's exited or past deadline."""
        import docker.errors

        with self._lock:
            orphans, self._orphans = self._orphans, set()
        now = time.time()
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            deadline = float(container.labels.get(DEADLINE_LABEL) or 0)
            if container.name in orphans or container.status in ("exited", "dead") or deadline < now:
                log.warning("removing container %s left behind (%s)", container.name, container.status)
                try:
                    container.remove(force=True)
                except docker.errors.APIError as exc:     # gone, or being removed by another runner
                    log.info("container %s: %s", container.name, exc.explanation)

    def track(self, container_id: str, running: bool) -> None:
        with self._lock:
            (self._running.add if running else self._running.discard)(container_id)

    def kill_all(self) -> None:
        """Kill every container this runner has running (its second SIGTERM)."""
        with self._lock:
            running, client = list(self._running), self._client
        for container_id in running:
            with contextlib.suppress(Exception):   # gone already, or the engine with it
                client.api.kill(container_id)

    def left_behind(self, name: str) -> None:
        """Remember a container that may exist unremoved; it is removed on reconnecting."""
        with self._lock:
            self._orphans.add(name)

    def remove(self, container) -> bool:
        """Remove a container; False if the engine is gone (the next connection's reap removes it)."""
        import docker.errors

        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 (SDK or transport error: reported, reaped later)
            self.left_behind(container.name)
            self.forget()
            log.warning("container %s not removed (%s); it is removed when a runner next connects",
                        container.name, exc)
            return False
        return True


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, config: DockerSandboxConfig, analyzer: str = "", engine: "Engine | None" = None):
        self.config = config
        self.analyzer = analyzer
        self.engine = engine or Engine(config)

    def for_analyzer(self, name: str) -> "DockerSandbox":
        return DockerSandbox(self.config, name, self.engine)

    def paths(self, source: Path, output: Path) -> "tuple[str, str]":
        return SOURCE_DIR, OUTPUT_DIR

    def check(self) -> None:
        client = self.engine.client()
        with self.engine.errors("answering a ping"):
            client.ping()

    def abort(self) -> None:
        self.engine.kill_all()

    def image_for(self, program: str) -> str:
        """The image a command runs in: the analyzer's, or the program's name when unbound."""
        return self.config.image.replace("{analyzer}", self.analyzer or Path(program).name)

    @property
    def user(self) -> str:
        if self.config.user:
            return self.config.user
        return NOBODY if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"

    def build_path(self, build: Path) -> str:
        return BUILD_DIR

    def run(self, argv: Sequence[str], source: Path, output: Path, limits: Limits,
            build: Optional[Path] = None) -> Execution:
        image = self.image_for(argv[0])
        _open_output(output, self.user)
        if build is not None and not self._own(self.user):
            os.chmod(build, 0o777)          # the containers' user builds there
        started = time.monotonic()
        container = self._create(image, argv, source, output, limits, build)
        try:
            timed_out, status = self._wait(container, limits.timeout)
            note = self._note(container, status, timed_out, limits)
        finally:
            removed = self.engine.remove(container)
        if not removed:     # the engine went away: it may have killed the command as it stopped
            raise SandboxUnavailable(f"the container engine at {self.engine.address} went away during the run")
        duration = time.monotonic() - started
        stderr = _tail(output / "stderr")
        if status == STATUS_NOT_FOUND and f"exec: {argv[0]}: not found" in stderr:
            raise AnalyzerUnavailable(f"'{argv[0]}' is not installed in image {image}")
        tail = "\n".join(part for part in (note, stderr or _tail(output / "stdout")) if part)
        return Execution(status, duration, timed_out, output / "stdout", tail)

    @staticmethod
    def _own(user: str) -> bool:
        uid = user.split(":")[0]
        return uid.isdigit() and int(uid) == os.getuid()

    def _create(self, image: str, argv: Sequence[str], source: Path, output: Path, limits: Limits,
                build: Optional[Path] = None):
        import docker.errors

        client = self.engine.client()
        options = self._options(source, output, limits)
        if build is not None:       # at the same path in every analyzer's container: the compile commands name it
            from docker.types import Mount

            options["mounts"].append(Mount(BUILD_DIR, str(build), type="bind"))
        try:
            with self.engine.errors(f"creating a container of {image}"):
                try:
                    return client.containers.create(image, ["sh", "-c", REDIRECT, "sh", *argv], **options)
                except docker.errors.APIError:
                    raise
                except Exception:
                    self.engine.left_behind(options["name"])   # created, perhaps, with the answer lost
                    raise
        except docker.errors.ImageNotFound:
            raise AnalyzerUnavailable(f"image {image} is not in the container engine at "
                                      f"{self.engine.address}; build it with 'kiskadee images build'") from None

    def _options(self, source: Path, output: Path, limits: Limits) -> dict:
        """How the container is confined."""
        from docker.types import Mount, Ulimit

        memory = f"{limits.memory_mb}m"
        deadline = int(time.time() + limits.timeout + GRACE_SECONDS)
        return dict(
            name=f"kiskadee-{self.analyzer or 'command'}-{uuid.uuid4().hex[:12]}",
            user=self.user, working_dir=SOURCE_DIR, network_mode="none", read_only=True,
            cap_drop=["ALL"], security_opt=["no-new-privileges"],
            mem_limit=memory, memswap_limit=memory, pids_limit=self.config.pids_limit,
            nano_cpus=int(self.config.cpus * 1e9),
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.config.tmpfs_mb}m"},
            mounts=[Mount(SOURCE_DIR, str(source), type="bind", read_only=True),
                    Mount(OUTPUT_DIR, str(output), type="bind")],
            ulimits=[Ulimit(name="fsize", soft=limits.max_output_bytes, hard=limits.max_output_bytes),
                     Ulimit(name="core", soft=0, hard=0)],
            environment={"HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
            labels={LABEL: self.analyzer or "command", DEADLINE_LABEL: str(deadline)},
            log_config={"type": "none"}, stop_signal="SIGKILL",
        )

    def _wait(self, container, timeout: float) -> Tuple[bool, int]:
        """Start the container and wait for it; kill it at the deadline. (timed out, exit status)"""
        import requests

        deadline = time.monotonic() + timeout
        with self.engine.errors("starting a container"):
            container.start()
        self.engine.track(container.id, True)
        try:
            while time.monotonic() < deadline:
                with self.engine.errors("waiting for a container"):
                    try:
                        return False, container.wait(timeout=max(1.0, deadline - time.monotonic()))["StatusCode"]
                    except requests.exceptions.RequestException:
                        pass                # a read timeout at the deadline, or the engine gone:
                self.check()                # this raises SandboxUnavailable in the second case
            return True, self._kill(container)
        finally:
            self.engine.track(container.id, False)

    def _kill(self, container) -> int:
        """Kill a container over its timeout; its exit status."""
        log.warning("container %s exceeded its timeout; killing it", container.name)
        try:
            with self.engine.errors("killing a container"):
                container.kill()
        except ConfigError:     # 409: it has just exited
            pass
        with self.engine.errors("waiting for a killed container"):
            return container.wait(timeout=self.config.api_timeout)["StatusCode"]

    def _note(self, container, status: int, timed_out: bool, limits: Limits) -> str:
        """Why the command was killed, when a limit killed it."""
        if timed_out:
            return ""
        if status == STATUS_FILE_TOO_LARGE:
            return f"killed: an output file reached the {limits.max_output_bytes} byte limit"
        if status == STATUS_KILLED and self._oom_killed(container):
            return f"killed: out of memory (limit {limits.memory_mb} MiB)"
        return ""

    def _oom_killed(self, container) -> bool:
        import docker.errors

        try:
            with self.engine.errors("inspecting a container"):
                container.reload()
        except (docker.errors.NotFound, SandboxUnavailable):
            return False
        return bool(container.attrs.get("State", {}).get("OOMKilled"))


def _open_output(output: Path, user: str) -> None:
    """Let the container's user write the output directory, stdout and stderr included."""
    files = [output / "stdout", output / "stderr"]
    for path in files:
        path.write_bytes(b"")
    uid = user.split(":")[0]
    if not (uid.isdigit() and int(uid) == os.getuid()):
        os.chmod(output, 0o777)
        for path in files:
            os.chmod(path, 0o666)


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, path.stat().st_size - TAIL_BYTES))
            return stream.read().decode(errors="replace").strip()
    except FileNotFoundError:
        return ""
