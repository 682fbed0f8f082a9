"""The `netspec` command: argument parsing and printing only; the work happens in the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import SpecError

EXIT_SPEC_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Declarative network specs: YAML layer tables -> checked, costed Flax models.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_ = commands.add_parser("compile", help="check a spec and print its layer table")
    compile_.add_argument("spec", help="a spec file, or the name of a zoo spec (netspec list)")
    compile_.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec variable (repeatable)",
    )
    compile_.add_argument("--json", action="store_true", help="print the report as JSON")

    commands.add_parser("list", help="list the zoo specs with their totals")
    commands.add_parser("schema", help="print the JSON Schema of the spec format")
    return parser


def run_compile(args: argparse.Namespace) -> int:
    from .specfile import analyze_spec

    report = analyze_spec(args.spec, args.overrides)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
        return 0
    from .table import print_report

    print_report(report)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .layers import format_shape
    from .specfile import analyze_spec, zoo_dir, zoo_names
    from .table import human

    table = Table(title=f"zoo ({zoo_dir()})", title_justify="left")
    for heading in ("spec", "input", "params", "MACs", "rows"):
        table.add_column(heading, justify="left" if heading == "spec" else "right")
    for name in zoo_names():
        report = analyze_spec(zoo_dir() / f"{name}.yaml")
        table.add_row(
            name,
            format_shape(report.input_shape),
            f"{report.params:,}",
            human(report.macs),
            str(len(report.rows)),
        )
    Console().print(table)
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from .spec import json_schema

    print(json.dumps(json_schema(), indent=1))
    return 0


COMMANDS = {"compile": run_compile, "list": run_list, "schema": run_schema}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SpecError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
