"""The ``symgen`` command: list, show, verify, check, export, notebook, build.

``list`` and ``show`` answer from the built index (symgen/records.py) with the standard
library alone, so they take about as long as Python takes to start; the engine (SymPy,
SciPy, hypothesis and the derivation modules) loads only for work that needs it: the
other commands, a user's own derivations (``--path``), and an index that no longer
matches the derivation modules (a checkout being edited, before ``symgen build``).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

EXIT_REFUTED = 1     # verify: a failed row; check: the candidate is refuted
EXIT_USAGE = 2       # a name, a candidate or an argument that cannot be used


class UsageError(Exception):
    """A request symgen cannot act on: reported in one line, exit status 2."""


def _engine(arguments):
    """The engine, with the user's derivation files made known to it."""
    from symgen.engine import api, catalogue

    for path in arguments.path or ():
        try:
            catalogue.add_path(path)
        except FileNotFoundError as error:
            raise UsageError(str(error)) from None
    return api


def _fast_catalogue(arguments):
    """The built catalogue summary, when it can answer (no --path, index current)."""
    if arguments.path:
        return None
    from symgen import records

    return records.current_catalogue()


def _engine_derivation(arguments, name: str):
    api = _engine(arguments)
    try:
        return api.derivation(name)
    except KeyError as error:
        raise UsageError(error.args[0]) from None


# --- list and show: the fast face -------------------------------------------------------


def command_list(arguments) -> int:
    summary = _fast_catalogue(arguments)
    if summary is not None:
        entries = summary["derivations"]
    else:
        from symgen.engine.record import summary_of

        api = _engine(arguments)
        entries = [summary_of(api.derivation(name)) for name in api.derivations()]
    if arguments.json:
        print(json.dumps(entries, indent=2))
        return 0
    by_kind: dict[str, list] = {}
    for entry in sorted(entries, key=lambda e: e["name"]):
        by_kind.setdefault(entry["kind"], []).append(entry)
    for kind in sorted(by_kind):
        print(f"{kind}:")
        for entry in by_kind[kind]:
            outputs = "" if len(entry["outputs"]) == 1 else f"  -> ({', '.join(entry['outputs'])})"
            print(f"  {entry['name']:<22} {entry['title']}{outputs}")
    return 0


def command_show(arguments) -> int:
    from symgen import records, view

    name = arguments.name.split(".", 1)[0]
    summary = _fast_catalogue(arguments)
    record = None
    if summary is not None:
        known = [entry["name"] for entry in summary["derivations"]]
        if name not in known:
            raise UsageError(records.unknown_name_message(name, known))
        record = records.load_record(name)
    if record is None:
        from symgen.engine.record import record_of

        found = _engine_derivation(arguments, name)
        if not arguments.no_prove:
            _tell(arguments, f"proving {found.name} (kept in the cache for next time)")
        record = record_of(found, prove=not arguments.no_prove)
    if arguments.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        if arguments.standalone and arguments.format != "latex":
            raise UsageError("--standalone is for --format latex (a complete LaTeX document)")
        if arguments.format == "latex":
            print(view.latex(record, standalone=arguments.standalone))
        else:
            print(view.FORMATS[arguments.format](record))
    return 0


# --- the engine's commands -----------------------------------------------------------------


def _tell(arguments, message: str) -> None:
    """Progress on stderr (a line rewritten in place on a terminal); nothing with -q."""
    if arguments.quiet:
        return
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _end_progress(arguments) -> None:
    if sys.stderr.isatty() and not arguments.quiet:
        sys.stderr.write("\r\033[K")


def command_verify(arguments) -> int:
    api = _engine(arguments)
    try:
        report = api.verify(arguments.names or None, examples=arguments.examples, jobs=arguments.jobs,
                            seed=arguments.seed, progress=lambda message: _tell(arguments, message))
    except KeyError as error:
        raise UsageError(error.args[0]) from None
    _end_progress(arguments)
    if arguments.json:
        print(json.dumps({"passed": report.passed, "rows": [row.as_dict() for row in report.rows]}, indent=2))
    else:
        _print_table(report, arguments.verbose)
    return 0 if report.passed else EXIT_REFUTED


def _print_table(report, verbose: bool) -> None:
    header = ("derivation", "check", "result", "verdict")
    rows = [(row.derivation, row.check, row.summary, "ok" if row.passed else "FAIL", row.seconds)
            for row in report.rows]
    widths = [min(max(len(r[i]) for r in rows + [header]), 60) for i in range(2)]
    print(f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[3]:<7} {header[2]}")
    for derivation, check, summary, verdict, seconds in rows:
        timing = f" [{seconds:.1f} s]" if verbose else ""
        print(f"{derivation:<{widths[0]}}  {check[:widths[1]]:<{widths[1]}}  {verdict:<7} {summary}{timing}")
    failed = sum(not row.passed for row in report.rows)
    print(f"\n{len(report.rows) - failed} passed, {failed} failed")


def command_check(arguments) -> int:
    api = _engine(arguments)
    found = _engine_derivation(arguments, arguments.name.split(".", 1)[0])
    takes = f"{found.name} takes {', '.join(found.param_names)}"
    if (arguments.expression is None) == (arguments.callable is None):
        raise UsageError(f"give the candidate as an expression or as --callable module:function ({takes})")
    candidate = arguments.expression if arguments.callable is None else _load_callable(arguments.callable, takes)
    try:
        result = api.check(arguments.name, candidate, args=_mapping(arguments.args, takes), seed=arguments.seed,
                           rtol=arguments.rtol, examples=arguments.examples)
    except (ValueError, KeyError) as error:
        reason = " ".join(str(error.args[0] if error.args else error).split())
        raise UsageError(reason if found.name in reason or "takes" in reason else f"{reason} ({takes})") from None
    if arguments.json:
        print(json.dumps(_check_payload(result), indent=2))
    else:
        print(result)
    return 0 if result.verified else EXIT_REFUTED


def _load_callable(spec: str, takes: str):
    """``module:function`` or ``path/to/file.py:function``: the user's function."""
    import importlib
    import importlib.util
    from pathlib import Path

    module_name, _, attribute = spec.rpartition(":")
    if not module_name or not attribute:
        raise UsageError(f"--callable {spec!r}: expected module:function or file.py:function ({takes})")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name)
            loaded = importlib.util.spec_from_file_location(path.stem, path)
            if loaded is None or not path.is_file():
                raise FileNotFoundError(f"no file {module_name}")
            module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())      # a module next to the user, as python -m finds it
            module = importlib.import_module(module_name)
        function = module
        for part in attribute.split("."):
            function = getattr(function, part)
    except Exception as error:                   # the user's module may raise anything on import
        raise UsageError(f"--callable {spec!r}: cannot load it ({type(error).__name__}: {error}) ({takes})") from None
    if not callable(function):
        raise UsageError(f"--callable {spec!r} is not callable ({takes})")
    return function


def _mapping(text: str | None, takes: str) -> dict | None:
    """``mu=loc,log_var=logvar``: the candidate's parameter names to the derivation's."""
    if not text:
        return None
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise UsageError(f"--args {text!r}: expected name=parameter,... ({takes})")
    return {own.strip(): theirs.strip() for own, theirs in pairs}


def _check_payload(result) -> dict:
    """``symgen check --json``: the verdict, both judges, the counterexample."""
    from symgen.engine.runner import _plain_point

    payload = {"name": result.name, "candidate": str(result.candidate), "verified": result.verified,
               "notes": result.notes}
    judgement = result.judgement
    if judgement is not None:
        payload["closed_form"] = {"passed": judgement.passed, "points": judgement.points, "rtol": judgement.rtol,
                                  "proved": judgement.proved}
        if result.is_callable:
            payload["max_relative_error"] = result.max_relative_error
            payload["worst_point"] = _plain_point(result.worst_point)
    payload["samples"] = [report.as_dict() for report in result.reports]
    if result.counterexample is not None:
        ce = result.counterexample
        payload["counterexample"] = {"point": _plain_point(ce.point), "output": ce.output,
                                     "estimate": _plain_value(ce.estimate),
                                     "standard_error": ce.standard_error,
                                     "candidate": _plain_value(ce.candidate), "check": ce.check,
                                     "samples": ce.samples}
    return payload


def _plain_value(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return value if isinstance(value, str) else float(value)


def command_build(arguments) -> int:
    from symgen.engine.build import build

    stale = build(check=arguments.check, docs_pages=not arguments.no_docs,
                  progress=None if arguments.check else (lambda message: _tell(arguments, message)))
    _end_progress(arguments)
    if arguments.check:
        if stale:
            print("stale generated files (run `symgen build`):\n  " + "\n  ".join(stale))
            return EXIT_REFUTED
        print("generated files are current")
        return 0
    print("\n".join(f"wrote {path}" for path in stale) or "generated files were already current")
    return 0


def command_export(arguments) -> int:
    found = _engine_derivation(arguments, arguments.name)
    from symgen.engine.export import export

    try:
        print(export(found, arguments.backend), end="")
    except ValueError as error:
        raise UsageError(str(error)) from None
    return 0


def command_notebook(arguments) -> int:
    api = _engine(arguments)
    from symgen.engine.notebook import write_notebook

    names = arguments.names or api.derivations()
    selected = [_engine_derivation(arguments, name) for name in names]
    try:
        path = write_notebook(selected, arguments.output, execute=not arguments.no_execute)
    except ImportError as error:
        raise UsageError(f"symgen notebook needs the notebook extra "
                         f"(pip install 'symgen[notebook,plot]'): {error}") from None
    print(f"wrote {path}")
    return 0


# --- the parser ------------------------------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--path", action="append", metavar="FILE_OR_DIR", default=default,
                        help="also load derivations from this file or directory (repeatable)")
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                          help="no progress display on stderr")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          default=argparse.SUPPRESS if suppress else False,
                          help="more detail: timings in tables, a traceback on errors")
    return common


def parser() -> argparse.ArgumentParser:
    from symgen import __version__

    top = argparse.ArgumentParser(
        prog="symgen", parents=[_common(suppress=False)],
        description="Derived, verified closed forms for generative-model objectives.",
        epilog="`symgen COMMAND --help` describes each command's arguments.")
    top.add_argument("--version", action="version", version=f"symgen {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common(suppress=True)]

    listing = commands.add_parser("list", parents=common, help="the derivations, grouped by objective kind",
                                  description="The catalogue, grouped by objective kind.")
    listing.add_argument("--json", action="store_true", help="one JSON object per derivation")
    listing.set_defaults(run=command_list)

    show = commands.add_parser("show", parents=common, help="a derivation's steps, reasons and closed form",
                               description="A derivation step by step: each step's reason and proof, "
                                           "the closed form, the function's signature, the references.")
    show.add_argument("name", help="derivation name (NAME.OUTPUT is accepted and shows all outputs)")
    show.add_argument("--format", choices=("text", "latex", "markdown"), default="text",
                      help="text for the terminal (default), LaTeX, or Markdown with LaTeX")
    show.add_argument("--standalone", action="store_true",
                      help="with --format latex: a complete document (pdflatex compiles it as given)")
    show.add_argument("--json", action="store_true", help="the derivation's record as JSON")
    show.add_argument("--no-prove", action="store_true",
                      help="for a derivation not in the built index: show its steps without proving them")
    show.set_defaults(run=command_show)

    verify = commands.add_parser("verify", parents=common, help="prove, check accuracy, run empirical checks",
                                 description="Prove every step, compare the generated function with a "
                                             "50-digit evaluation, and run every empirical check. Exit "
                                             "status 1 if anything fails.")
    verify.add_argument("names", nargs="*", metavar="NAME", help="derivations to verify (default: all)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.add_argument("--examples", type=int, default=30, help="parameter points per check (default 30)")
    verify.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="verify derivations in N processes at once (default 1)")
    verify.add_argument("--seed", type=int, help="seed of the checks' random points (default: derandomized)")
    verify.set_defaults(run=command_verify)

    check = commands.add_parser("check", parents=common, help="verify or refute a candidate formula or function",
                                description="Judge a candidate formula, or a Python function, by the "
                                            "derivation's proved closed form (200+ points, edges included) "
                                            "and its empirical checks: exit 0 if verified, 1 if refuted "
                                            "(with a counterexample), 2 if it cannot be read.")
    check.add_argument("name", help="derivation name, or NAME.OUTPUT for one output of several")
    check.add_argument("expression", nargs="?",
                       help="the formula, in the derivation's argument names (SymPy or NumPy syntax)")
    check.add_argument("--callable", metavar="MODULE:FUNCTION",
                       help="judge a Python function instead (module:function or file.py:function)")
    check.add_argument("--args", metavar="NAME=PARAM,...",
                       help="the callable's parameter names to the derivation's (mu=loc,log_var=logvar)")
    check.add_argument("--seed", type=int, help="seed of the random points (default: derandomized)")
    check.add_argument("--rtol", type=float, help="relative tolerance against the closed form "
                       "(default 1e-15 for a formula, 1e-9 for a callable, on top of its rounding)")
    check.add_argument("--examples", type=int, default=30, help="parameter points per check (default 30)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=command_check)

    export = commands.add_parser("export", parents=common, help="a closed form as source for numpy, torch or jax",
                                 description="The function symgen generates for an array library (NumPy, "
                                             "torch or JAX), as Python source: validation, the closed form "
                                             "and calls of symgen's stable primitives (symgen.numerics).")
    export.add_argument("name", help="derivation name")
    export.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy",
                        help="the array library (default numpy)")
    export.set_defaults(run=command_export)

    notebook = commands.add_parser("notebook", parents=common,
                                   help="the theory notebook's sections, derived and executed",
                                   description="A Jupyter notebook of the theory notebook's sections, "
                                               "each with its derivations, executed.")
    notebook.add_argument("names", nargs="*", metavar="NAME", help="derivations to include (default: all)")
    notebook.add_argument("-o", "--output", default="symgen.ipynb", help="where to write it (default symgen.ipynb)")
    notebook.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    notebook.set_defaults(run=command_notebook)

    divergence = commands.add_parser(
        "kl", parents=common, help="KL(P || Q) between two families, derived and verified on demand",
        description="KL(P || Q) for two of torch.distributions' families (Normal, Laplace, Gumbel, Cauchy, "
                    "LogNormal, HalfNormal, Exponential, Gamma, Beta, Uniform, Pareto, Weibull): the "
                    "derivation step by step, each step proved, or why there is no closed form.")
    divergence.add_argument("families", nargs="*", metavar="FAMILY", help="P and Q, e.g. Gamma Laplace")
    divergence.add_argument("--table", action="store_true",
                            help="every ordered pair: closed form, infinite, or no closed form")
    divergence.add_argument("--verify", action="store_true",
                            help="also check the function against 50-digit mpmath, samples and quadrature")
    divergence.add_argument("--prove", action="store_true",
                            help="with --table: derive and prove every closed-form pair, each in its own "
                                 "process, timed (SYMGEN_CACHE_DIR=off times them cold)")
    divergence.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                            help="with --table --prove: pairs proved side by side")
    divergence.set_defaults(run=command_kl)

    build = commands.add_parser("build", parents=common, help="regenerate the generated files",
                                description="Regenerate symgen/formulas/, symgen/index/, the README's "
                                            "catalogue table and docs/ from the derivations.")
    build.add_argument("--check", action="store_true", help="only compare; exit 1 if anything is stale")
    build.add_argument("--no-docs", action="store_true",
                       help="leave docs/ alone (its pages run the verification, which takes minutes)")
    build.set_defaults(run=command_build)
    return top


def command_kl(arguments) -> int:
    from symgen.engine import kl

    if arguments.table and arguments.prove:
        failed, slowest = 0, (0.0, "")
        for p_name, q_name, outcome, seconds in kl.prove_table(arguments.jobs):
            print(f"{p_name:<12} {q_name:<12} {seconds:6.1f} s  {outcome}", flush=True)
            failed += outcome != "proved"
            slowest = max(slowest, (seconds, f"{p_name}-{q_name}"))
        print(f"{'all proved' if not failed else f'{failed} FAILED'}; slowest {slowest[1]} {slowest[0]:.1f} s")
        return 1 if failed else 0
    if arguments.table:
        print(kl.table_text(), end="")
        return 0
    if arguments.prove:
        raise UsageError("--prove goes with --table (symgen kl --table --prove); for one pair, symgen kl P Q")
    if len(arguments.families) != 2:
        raise UsageError("name two families, P and Q (symgen kl Gamma Laplace), or give --table")
    try:
        answer = kl.kl(*arguments.families)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(answer.show(), end="")
    if arguments.verify and answer.derivation is not None:
        report = answer.verify()
        for row in report.rows:
            print(f"{'ok' if row.passed else 'FAILED':<7} {row.check}: {row.summary}")
        return 0 if report.passed else 1
    return 0


def _one_blas_thread_per_process() -> None:
    """The checks' linear algebra is on small matrices (control-variate fits of ~60 columns,
    d <= 4 covariances), where BLAS threads cost more than they give: on a busy 2-core machine
    a fit took 0.05 s with two threads and 0.003 s with one. ``--jobs`` parallelises across
    processes instead. Takes effect only before NumPy is loaded, and never overrides a
    setting of the user's."""
    if "numpy" not in sys.modules:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")


def main(argv=None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `symgen show NAME | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    arguments = parser().parse_args(argv)
    if arguments.command in ("verify", "check", "build", "kl"):
        _one_blas_thread_per_process()
    try:
        return arguments.run(arguments)
    except UsageError as error:
        if arguments.verbose:
            raise
        print(f"symgen {arguments.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
