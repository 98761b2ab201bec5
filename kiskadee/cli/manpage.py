"""The man pages kiskadee(1) and kiskadee.toml(5), generated so they cannot drift.

kiskadee(1) is written from the argument parser (``build_parser``): every
subcommand with its usage, description and options, and the exit statuses
of its epilog. kiskadee.toml(5) is written from the shipped configuration,
``packaging/kiskadee.toml``, which lists every key with its default and a
comment. ``make man`` and the RPM build run::

    python3 -m kiskadee.cli.manpage [--config packaging/kiskadee.toml] [--output DIR]

which writes DIR/man1/kiskadee.1 and DIR/man5/kiskadee.toml.5.
"""

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from kiskadee import __version__

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "packaging" / "kiskadee.toml"
_SECTION = re.compile(r"^\[([a-z0-9_.]+)\]\s*$")
_KEY = re.compile(r"^#? ?([a-z][a-z0-9_]*) = (.*)$")
_CONTINUED = re.compile(r"^#\s{2,}(\S.*)$")     # a comment or value carried over from the line above


def escape(text: str) -> str:
    """``text`` safe in roff: backslashes escaped, a leading dot or quote neutralised, dashes literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.splitlines())


def _header(name: str, section: int, title: str) -> List[str]:
    return [f'.TH "{name.upper()}" "{section}" "" "kiskadee {__version__}" "{title}"',
            ".SH NAME", f"{escape(name)} \\- {escape(_first_line(title))}"]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# kiskadee(1)

def commands(parser: argparse.ArgumentParser, prefix: str = "kiskadee") -> Iterator[Tuple[str, str, argparse.ArgumentParser]]:
    """(full name, help, parser) of every subcommand of ``parser``, depth first, in the order they were added."""
    for action in parser._actions:      # argparse keeps no public list of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", helps.get(name, ""), sub
                yield from commands(sub, f"{prefix} {name}")


def _options(parser: argparse.ArgumentParser) -> List[str]:
    lines = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            metavar = f" {action.metavar or action.dest.upper()}" if action.nargs != 0 else ""
            term = ", ".join(f"\\fB{escape(option)}\\fR{escape(metavar)}" for option in action.option_strings)
        else:
            term = f"\\fI{escape(str(action.metavar or action.dest))}\\fR"
        lines += [".TP", term, escape(action.help or "")]
    return lines


def kiskadee_1(parser: argparse.ArgumentParser) -> str:
    """The roff text of kiskadee(1)."""
    lines = _header("kiskadee", 1, "continuous static analysis of upstream releases")
    lines += [".SH SYNOPSIS", "\\fBkiskadee\\fR [\\fIOPTION\\fR]... \\fICOMMAND\\fR [\\fIARG\\fR]...",
              ".SH DESCRIPTION", escape(parser.description or ""), ".SH OPTIONS"]
    lines += _options(parser)
    lines.append(".SH COMMANDS")
    for name, help_text, sub in commands(parser):
        lines += [f".SS {escape(name)}", escape(help_text)]
        usage = " ".join(sub.format_usage().split())
        lines += [".PP", ".nf", escape(usage.removeprefix("usage: ")), ".fi"]
        if sub.description:
            lines += [".PP", escape(" ".join(sub.description.split()))]
        lines += _options(sub)
    lines += _epilog(parser.epilog or "")
    lines += [".SH SEE ALSO", "\\fBkiskadee.toml\\fR(5), \\fBsqlite3\\fR(1), \\fBsystemctl\\fR(1)"]
    return "\n".join(lines) + "\n"


def _epilog(epilog: str) -> List[str]:
    """The exit statuses (as a list of codes) and the paragraphs after them."""
    lines = [".SH EXIT STATUS"]
    for line in epilog.splitlines():
        code = re.match(r"^\s+(\d+)\s+(.*)$", line)
        if code:
            lines += [".TP", f"\\fB{code.group(1)}\\fR", escape(code.group(2))]
        elif line.strip() and not line.strip().endswith(":"):
            lines += [escape(line.strip())]
        elif not line.strip():
            lines.append(".PP")
    return lines


# kiskadee.toml(5)

@dataclasses.dataclass
class Key:
    """One key of the shipped configuration: its default as written and its comment."""

    name: str
    default: str
    comment: List[str]


@dataclasses.dataclass
class Section:
    name: str
    text: List[str]
    keys: List[Key]


def read_config(text: str) -> Tuple[List[str], List[Section]]:
    """The opening comment and the sections, with their keys, of a configuration written like the shipped one.

    A comment on lines of its own belongs to the section it is in, unless a
    section header follows it: then it introduces that section.
    """
    opening: List[str] = []
    sections: List[Section] = []
    pending: List[str] = []
    for line in text.splitlines():
        section, key, continued = _SECTION.match(line), _KEY.match(line), _CONTINUED.match(line)
        if section:
            sections.append(Section(section.group(1), pending, []))
            pending = []
        elif not sections:
            opening += [line.lstrip("#").strip()] if line.startswith("#") else []
        elif key:
            sections[-1].text += pending
            pending = []
            value, _, comment = key.group(2).partition("  #")
            sections[-1].keys.append(Key(key.group(1), value.strip(), [comment.strip()] if comment.strip() else []))
        elif continued and sections[-1].keys and not pending:
            _continue(sections[-1].keys[-1], continued.group(1))
        elif line.startswith("#"):
            pending.append(line.lstrip("#").strip())
    if sections:
        sections[-1].text += pending
    return opening, sections


def _continue(key: Key, rest: str) -> None:
    """Add a line carried over from ``key``'s line: more of its comment, or more of its value."""
    if rest.startswith("#"):
        key.comment.append(rest.lstrip("# ").strip())
        return
    value, _, comment = rest.partition("  #")
    key.default += " " + value.strip()
    if comment.strip():
        key.comment.append(comment.strip())


def kiskadee_toml_5(text: str) -> str:
    """The roff text of kiskadee.toml(5) from the shipped configuration ``text``."""
    opening, sections = read_config(text)
    lines = _header("kiskadee.toml", 5, "configuration of kiskadee")
    lines += [".SH SYNOPSIS", "\\fI/etc/kiskadee/kiskadee.toml\\fR", ".SH DESCRIPTION",
              escape(" ".join(line for line in opening if line)), ".SH KEYS"]
    for section in sections:
        lines += [f".SS [{escape(section.name)}]"]
        if any(section.text):
            lines += [".PP", escape(" ".join(line for line in section.text if line))]
        for key in section.keys:
            lines += [".TP", f"\\fB{escape(key.name)}\\fR = {escape(key.default)}"]
            lines += [escape(" ".join(key.comment))] if key.comment else []
    lines += [".SH FILES", ".TP", "\\fI/etc/kiskadee/kiskadee.toml\\fR",
              "read unless \\fB\\-\\-config\\fR or \\fB$KISKADEE_CONFIG\\fR names another file",
              ".SH SEE ALSO", "\\fBkiskadee\\fR(1)"]
    return "\n".join(lines) + "\n"


def write(output: Path, config_file: Path = SHIPPED_CONFIG) -> List[Path]:
    """Write both pages under ``output`` (man1/, man5/); the files written."""
    from kiskadee.cli import build_parser  # the whole command, only when writing pages

    pages = {output / "man1" / "kiskadee.1": kiskadee_1(build_parser()),
             output / "man5" / "kiskadee.toml.5": kiskadee_toml_5(config_file.read_text(encoding="utf-8"))}
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(pages)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m kiskadee.cli.manpage", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=SHIPPED_CONFIG, help="the shipped configuration")
    parser.add_argument("--output", type=Path, default=Path("build/man"), help="directory for man1/ and man5/")
    args = parser.parse_args(argv)
    for path in write(args.output, args.config):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
