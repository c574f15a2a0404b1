"""The ``symgen`` command: list, show, verify, check, build."""
from __future__ import annotations

import argparse
import json
import signal
import sys


def _engine():
    from symgen.engine import api, catalogue

    return api, catalogue


def _add_paths(arguments):
    from symgen.engine import catalogue

    for path in arguments.path or ():
        catalogue.add_path(path)


def command_list(arguments) -> int:
    api, catalogue = _engine()
    known = catalogue.catalogue()
    by_kind: dict[str, list] = {}
    for name in sorted(known):
        by_kind.setdefault(known[name].kind, []).append(known[name])
    for kind in sorted(by_kind):
        print(f"{kind}:")
        for found in by_kind[kind]:
            outputs = "" if len(found.outputs) == 1 else f"  -> ({', '.join(found.outputs)})"
            print(f"  {found.name:<22} {found.title}{outputs}")
    return 0


def command_show(arguments) -> int:
    api, _ = _engine()
    from symgen.engine import render

    found = api.derivation(arguments.name)
    if not arguments.no_prove:
        found.prove()
    print(render.FORMATS[arguments.format](found))
    return 0


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def command_verify(arguments) -> int:
    api, _ = _engine()
    report = api.verify(arguments.names or None, examples=arguments.examples,
                        progress=None if arguments.quiet else _progress)
    if sys.stderr.isatty() and not arguments.quiet:
        sys.stderr.write("\r\033[K")
    if arguments.json:
        print(json.dumps({"passed": report.passed, "rows": [row.as_dict() for row in report.rows]}, indent=2))
    else:
        _print_table(report)
    return 0 if report.passed else 1


def _print_table(report) -> None:
    header = ("derivation", "check", "result", "verdict")
    rows = [(row.derivation, row.check, row.summary, "ok" if row.passed else "FAIL") for row in report.rows]
    widths = [min(max(len(r[i]) for r in rows + [header]), 60) for i in range(2)]
    print(f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[3]:<7} {header[2]}")
    for derivation, check, summary, verdict in rows:
        print(f"{derivation:<{widths[0]}}  {check[:widths[1]]:<{widths[1]}}  {verdict:<7} {summary}")
    failed = sum(not row.passed for row in report.rows)
    print(f"\n{len(report.rows) - failed} passed, {failed} failed")


def command_check(arguments) -> int:
    api, _ = _engine()
    try:
        result = api.check(arguments.name, arguments.expression, examples=arguments.examples)
    except ValueError as error:
        print(f"symgen check: {error}", file=sys.stderr)
        return 2
    if arguments.json:
        payload = {"name": result.name, "candidate": str(result.candidate), "verified": result.verified}
        if result.counterexample is not None:
            ce = result.counterexample
            payload["counterexample"] = {"point": {k: (v.tolist() if hasattr(v, "tolist") else v)
                                                   for k, v in ce.point.items()},
                                         "estimate": ce.estimate, "standard_error": ce.standard_error,
                                         "candidate": ce.candidate, "check": ce.check}
        print(json.dumps(payload, indent=2))
    else:
        print(result)
    return 0 if result.verified else 1


def command_build(arguments) -> int:
    from symgen.engine import codegen

    stale = codegen.build(check=arguments.check, docs=not arguments.no_docs,
                          progress=None if arguments.check else _progress)
    if arguments.check:
        if stale:
            print("stale generated files (run `symgen build`):\n  " + "\n  ".join(stale))
            return 1
        print("generated files are current")
        return 0
    print("\n".join(f"wrote {path}" for path in stale) or "generated files were already current")
    return 0


def command_export(arguments) -> int:
    api, _ = _engine()
    from symgen.engine.export import export

    try:
        print(export(api.derivation(arguments.name), arguments.backend), end="")
    except ValueError as error:
        print(f"symgen export: {error}", file=sys.stderr)
        return 2
    return 0


def command_notebook(arguments) -> int:
    api, catalogue = _engine()
    from symgen.engine.notebook import write_notebook

    known = catalogue.catalogue()
    selected = [api.derivation(name) for name in arguments.names] if arguments.names else \
        [known[name] for name in sorted(known)]
    try:
        path = write_notebook(selected, arguments.output, execute=not arguments.no_execute)
    except ImportError as error:
        print(f"symgen notebook needs the notebook extra (pip install 'symgen[notebook,plot]'): {error}",
              file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="symgen", description=(
        "Derived, verified closed forms for generative-model objectives."))
    top.add_argument("--path", action="append", metavar="FILE_OR_DIR",
                     help="also load derivations from this file or directory (repeatable)")
    commands = top.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="the derivations, grouped by objective kind")
    listing.set_defaults(run=command_list)

    show = commands.add_parser("show", help="a derivation's steps, reasons and closed form")
    show.add_argument("name")
    show.add_argument("--format", choices=("text", "latex", "markdown"), default="text")
    show.add_argument("--no-prove", action="store_true",
                      help="show the steps without proving them first (faster)")
    show.set_defaults(run=command_show)

    verify = commands.add_parser("verify", help="prove, check accuracy, run empirical checks")
    verify.add_argument("names", nargs="*", metavar="NAME")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.add_argument("--examples", type=int, default=30, help="parameter points per check")
    verify.add_argument("--quiet", action="store_true", help="no progress display")
    verify.set_defaults(run=command_verify)

    check = commands.add_parser("check", help="verify or refute a candidate formula")
    check.add_argument("name", help="derivation name, or NAME.OUTPUT")
    check.add_argument("expression", help="formula in the derivation's argument names")
    check.add_argument("--examples", type=int, default=30)
    check.add_argument("--json", action="store_true")
    check.set_defaults(run=command_check)

    export = commands.add_parser("export", help="a closed form as source for numpy, torch or jax")
    export.add_argument("name")
    export.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy")
    export.set_defaults(run=command_export)

    notebook = commands.add_parser("notebook", help="the theory notebook's sections, derived and executed")
    notebook.add_argument("names", nargs="*", metavar="NAME")
    notebook.add_argument("-o", "--output", default="symgen.ipynb")
    notebook.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    notebook.set_defaults(run=command_notebook)

    build = commands.add_parser("build", help="regenerate symgen/formulas/ from the derivations")
    build.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    build.add_argument("--no-docs", action="store_true",
                       help="only the formulas, not docs/ (whose pages run the verification)")
    build.set_defaults(run=command_build)
    return top


def main(argv=None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `symgen show NAME | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    arguments = parser().parse_args(argv)
    _add_paths(arguments)
    try:
        return arguments.run(arguments)
    except KeyError as error:
        print(f"symgen: {error.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
