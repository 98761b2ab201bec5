"""The analyzer images of the docker sandbox: ``kiskadee images base|build|list``.

Each analyzer has a directory under ``packaging/containers`` with a
``packages`` list of Debian packages; every image is built from the one
``Containerfile`` there, with the analyzer's name as its ``ANALYZER``
argument and ``packaging/containers`` as the build context (so the images
share its ``install-packages`` script). An image is built ``FROM`` a configurable base
(``sandbox.docker.base_image``, a Debian image from a registry by default).
Where no registry can be reached, ``kiskadee images base`` makes the base
from the Debian mirror apt uses, with mmdebstrap (debootstrap's faster
successor: apt resolves and downloads, and it writes a tarball), and imports
it into the engine; the analyzers' packages are in it already, so the image
builds need no network either.
"""

import dataclasses
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from kiskadee.config import DockerSandboxConfig
from kiskadee.errors import ConfigError, ImageBuildError

log = logging.getLogger(__name__)

BASE_REPOSITORY = "kiskadee/base"
SHIPPED_CONTAINERS = Path("/usr/share/kiskadee/containers")
SOURCE_CONTAINERS = Path(__file__).resolve().parents[2] / "packaging" / "containers"
CONTAINERFILE = "Containerfile"  # one for every analyzer's image
PACKAGES = "packages"           # in each analyzer's directory: its Debian packages
BOOTSTRAP_VARIANT = "apt"       # the Essential packages and apt, plus the analyzers' packages


def containers_dir(config: DockerSandboxConfig) -> Path:
    """Where the Containerfile is: the configured directory, the installed one, the source tree's."""
    candidates = [Path(config.containers_dir)] if config.containers_dir else [SHIPPED_CONTAINERS,
                                                                               SOURCE_CONTAINERS]
    for candidate in candidates:
        if (candidate / CONTAINERFILE).is_file() and (candidate / "install-packages").is_file():
            return candidate
    raise ConfigError(f"no analyzer {CONTAINERFILE} in {' or '.join(map(str, candidates))}; "
                      "set sandbox.docker.containers_dir")


def analyzers_in(directory: Path, wanted: Sequence[str] = ()) -> List[str]:
    """The analyzers with a packages list, or those of ``wanted`` (an error names any without one)."""
    known = sorted(path.parent.name for path in directory.glob(f"*/{PACKAGES}"))
    missing = [name for name in wanted if name not in known]
    if missing:
        raise ConfigError(f"no {PACKAGES} list for {', '.join(missing)} in {directory}; "
                          f"known: {', '.join(known)}")
    return list(wanted) or known


def debian_packages(directory: Path, analyzers: Iterable[str]) -> List[str]:
    """The Debian packages the analyzers' images need, from their ``packages`` lists."""
    packages: List[str] = []
    for name in analyzers:
        for line in (directory / name / PACKAGES).read_text().splitlines():
            package = line.split("#", 1)[0].strip()
            if package and package not in packages:
                packages.append(package)
    return packages


def image_name(config: DockerSandboxConfig, analyzer: str) -> str:
    return config.image.replace("{analyzer}", analyzer)


def base_tag(suite: str) -> str:
    return f"{BASE_REPOSITORY}:{suite}"


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """What 'kiskadee images base' makes: a Debian suite from a mirror, with some packages."""

    suite: str
    mirror: str
    packages: Sequence[str]
    work_dir: Optional[str] = None      # where the root file system is assembled (tmpfs: faster)

    def command(self, tarball: Path) -> List[str]:
        return ["mmdebstrap", f"--variant={BOOTSTRAP_VARIANT}", "--quiet",
                f"--include={','.join(self.packages)}", '--aptopt=Acquire::Languages "none"',
                self.suite, str(tarball), self.mirror]


def bootstrap_base(client, bootstrap: Bootstrap, tag: str) -> str:
    """Make a base image with mmdebstrap and import it as ``tag``; its id."""
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed (Debian and Fedora package 'mmdebstrap')")
    with tempfile.TemporaryDirectory(prefix="kiskadee-base-", dir=bootstrap.work_dir) as work:
        tarball = Path(work) / "root.tar"
        log.info("bootstrapping %s from %s with %s", bootstrap.suite, bootstrap.mirror,
                 ", ".join(bootstrap.packages))
        done = subprocess.run(bootstrap.command(tarball), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=dict(os.environ, TMPDIR=work))
        if done.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed (status {done.returncode}): {done.stderr[-2000:]}")
        repository, _, version = tag.rpartition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version,
                                          changes=['CMD ["/bin/sh"]'])
    return client.images.get(tag).id


def build_image(client, directory: Path, analyzer: str, tag: str, base: str, network: str = "") -> str:
    """Build one analyzer's image from ``base``; its id."""
    import docker.errors

    log.info("building %s from %s", tag, base)
    try:
        image, _ = client.images.build(path=str(directory), dockerfile=CONTAINERFILE, tag=tag,
                                       buildargs={"BASE": base, "ANALYZER": analyzer}, rm=True, forcerm=True,
                                       pull=False, network_mode=network or None)
    except docker.errors.BuildError as exc:
        lines = [entry.get("stream", entry.get("error", "")) for entry in exc.build_log]
        raise ImageBuildError(f"building {tag} failed: {exc.msg}{_base_hint(client, base)}\n"
                              f"{''.join(lines)[-2000:]}") from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {tag} failed: {exc.explanation}{_base_hint(client, base)}") from None
    return image.id


def _base_hint(client, base: str) -> str:
    """What to do when the base image is not in the engine (and so had to be pulled)."""
    import docker.errors

    try:
        client.images.get(base)
        return ""
    except docker.errors.APIError:
        return (f" (the base {base} is not in the engine; without a registry, make one with "
                "'kiskadee images base' or build with --bootstrap)")



# --- what the 'kiskadee images' subcommands do ------------------------------------

def connect(config: DockerSandboxConfig):
    """A client of the configured engine; SandboxUnavailable if it cannot be reached."""
    from kiskadee.analysis.sandbox.docker import Engine

    return Engine(config).client()


def make_base(config: DockerSandboxConfig, analyzers: Sequence[str] = (), work_dir: Optional[str] = None) -> str:
    """Bootstrap and import the base image with the analyzers' packages; its tag."""
    from kiskadee.sources.debian import apt_mirror

    directory = containers_dir(config)
    packages = debian_packages(directory, analyzers_in(directory, analyzers))
    bootstrap = Bootstrap(config.bootstrap_suite, config.bootstrap_mirror or apt_mirror(), packages, work_dir)
    tag = base_tag(config.bootstrap_suite)
    bootstrap_base(connect(config), bootstrap, tag)
    return tag


def build_all(config: DockerSandboxConfig, analyzers: Sequence[str] = (), base: str = "",
              network: str = "") -> List["tuple[str, str]"]:
    """Build the analyzers' images (all that have a packages list by default); (tag, id) of each."""
    directory = containers_dir(config)
    client = connect(config)
    return [(image_name(config, name), build_image(client, directory, name, image_name(config, name),
                                                   base or config.base_image, network))
            for name in analyzers_in(directory, analyzers)]


def describe(config: DockerSandboxConfig, analyzer_settings: object,
             analyzers: Sequence[str] = ()) -> List[dict]:
    """Each analyzer image: its tag, id and the tool version it reports (what results record)."""
    import docker.errors

    from kiskadee.analysis.analyzers import make_analyzers
    from kiskadee.analysis.pipeline import tool_version
    from kiskadee.analysis.sandbox.base import Limits
    from kiskadee.analysis.sandbox.docker import DockerSandbox

    names = analyzers_in(containers_dir(config), analyzers)
    sandbox = DockerSandbox(config)
    client = sandbox.engine.client()
    described = []
    for analyzer in make_analyzers(names, analyzer_settings):
        tag = image_name(config, analyzer.name)
        try:
            image_id = client.images.get(tag).id
        except docker.errors.ImageNotFound:
            described.append({"analyzer": analyzer.name, "image": tag, "id": "", "version": "not built"})
            continue
        with tempfile.TemporaryDirectory(prefix="kiskadee-images-") as scratch:
            version = tool_version(analyzer, Path(scratch), sandbox.for_analyzer(analyzer.name),
                                   Limits(60, 512, 1024**2), Path(scratch))
        described.append({"analyzer": analyzer.name, "image": tag, "id": image_id, "version": version})
    return described
