"""``kiskadee ranking refit``: the rank's per-check priors fitted on a site's own waivers."""

import json
import sys
from pathlib import Path

from kiskadee import config
from kiskadee.cli.common import open_store
from kiskadee.core import priors, ranking
from kiskadee.errors import EXIT_OK
from kiskadee.store.ranking_inputs import waived_checks


REAL_KINDS = ("bug",)       # a waiver of any other kind (false-positive, intentional) says: not worth reporting


def add_commands(commands, database) -> None:
    """Add this module's commands to the parser; ``database`` is the shared --db option."""
    group = commands.add_parser("ranking", help="the rank's priors").add_subparsers(dest="ranking", metavar="COMMAND")
    group.required = True
    cmd = group.add_parser(
        "refit", parents=[database], help="fit per-check priors on this site's waivers, as JSON",
        description="Count, per analyzer and check, the waived findings of the database: a waiver of kind bug "
                    "counts as a real finding, false-positive and intentional as not. Added to the priors "
                    "kiskadee ships (unless --site-only), the table is written as JSON.")
    cmd.add_argument("--output", metavar="FILE", type=Path, help="where to write the table (default: standard output)")
    cmd.add_argument("--site-only", action="store_true", help="only this site's waivers, not the shipped priors")
    cmd.set_defaults(func=cmd_refit)


def cmd_refit(args, settings: config.Config) -> int:
    open_store(args, settings, schema="current")
    verdicts = waived_checks()
    site = ranking.fit((analyzer, check_id, kind in REAL_KINDS) for analyzer, check_id, kind in verdicts)
    table = site if args.site_only else ranking.merged(priors.PRIORS, site)
    document = {"waivers": len(verdicts), "real": sum(kind in REAL_KINDS for _, _, kind in verdicts),
                "shipped_priors_included": not args.site_only, "priors": table}
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text)
        print(f"{args.output}: {document['waivers']} waived findings, {document['real']} of them bugs, "
              f"over {sum(len(r['checks']) for r in site.values())} checks", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
