"""``kiskadee images``: the analyzer images of the docker sandbox."""

from kiskadee import config
from kiskadee.errors import EXIT_OK


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    _add_images(commands)


def _add_images(commands) -> None:
    cmd = commands.add_parser("images", help="build the analyzer images of the docker sandbox",
                              description="Build and inspect the images the docker sandbox runs analyzers in.")
    actions = cmd.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    names = dict(metavar="ANALYZER", nargs="*", help="default: every analyzer with a packages list in the containers directory")
    base = actions.add_parser("base", help="make a local base image from the Debian mirror (mmdebstrap)")
    base.add_argument("analyzers", **names)
    base.add_argument("--work-dir", metavar="DIR", help="where to assemble it (a tmpfs is fastest)")
    base.set_defaults(func=cmd_images_base)
    build = actions.add_parser("build", help="build the analyzer images")
    build.add_argument("analyzers", **names)
    build.add_argument("--base", metavar="IMAGE", help="image to build from (default: sandbox.docker.base_image)")
    build.add_argument("--bootstrap", action="store_true",
                       help="make a local base first ('images base') and build from it: no registry needed")
    build.add_argument("--network", metavar="MODE", default="", help="network of the build steps (e.g. none)")
    build.add_argument("--work-dir", metavar="DIR", help="with --bootstrap: where to assemble the base")
    build.set_defaults(func=cmd_images_build)
    listing = actions.add_parser("list", help="each analyzer image and the tool version it reports")
    listing.add_argument("analyzers", **names)
    listing.set_defaults(func=cmd_images_list)


def cmd_images_base(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    print(f"built {images.make_base(settings.sandbox.docker, args.analyzers, args.work_dir)}")
    return EXIT_OK


def cmd_images_build(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    docker = settings.sandbox.docker
    base = images.make_base(docker, args.analyzers, args.work_dir) if args.bootstrap else args.base
    for tag, image_id in images.build_all(docker, args.analyzers, base or "", args.network):
        print(f"built {tag} {image_id}")
    return EXIT_OK


def cmd_images_list(args, settings: config.Config) -> int:
    from kiskadee.analysis import images

    for image in images.describe(settings.sandbox.docker, settings.analyzers, args.analyzers):
        print(f"{image['analyzer']:<12} {image['version']:<10} {image['image']} {image['id'][:19]}")
    return EXIT_OK
