"""Sandbox backends: where and how an analyzer command runs.

A backend runs one command over a source tree with the tree visible at
``source_path`` and a writable output directory at ``output_path`` (paths
as the command sees them), under a wall-clock timeout, a memory limit and a
cap on output size. The local backend runs a subprocess; the docker backend
runs a hardened container (kiskadee.analysis.sandbox.docker).
"""

from typing import TYPE_CHECKING, Optional

from kiskadee.analysis.sandbox.base import Sandbox

if TYPE_CHECKING:
    from kiskadee.config import SandboxConfig


def make_sandbox(backend: str, settings: Optional["SandboxConfig"] = None) -> Sandbox:
    """The sandbox named by the configuration; ``settings`` is its [sandbox] section."""
    if backend == "local":
        from kiskadee.analysis.sandbox.local import LocalSandbox
        from kiskadee.config import SandboxConfig

        return LocalSandbox((settings or SandboxConfig()).local)
    if backend == "docker":
        from kiskadee.analysis.sandbox.docker import DockerSandbox
        from kiskadee.config import SandboxConfig

        return DockerSandbox((settings or SandboxConfig()).docker)
    raise ValueError(f"unknown sandbox backend {backend!r}; known: local, docker")
