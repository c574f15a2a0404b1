"""The command line: a fast face for list and show, clear errors, the flags a user expects.

How fast is measured by benchmarks/cli.py, not here; what is tested is what makes it fast:
list and show load neither SymPy nor the derivation modules when the index is current.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import symgen
from symgen import cli, records

ROOT = Path(__file__).resolve().parent.parent


def symgen_command(*arguments, cwd=None, environment=None):
    """The command in a fresh interpreter, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "symgen", *arguments], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(environment or {})})


@pytest.fixture
def symgen_in_process(capsys):
    """The command run in this process, where the engine is already loaded (much faster than
    a fresh interpreter for the commands that need it); files added with --path are
    forgotten afterwards."""
    from symgen.engine import catalogue

    known = list(catalogue._extra_paths)

    def run(*arguments):
        status = cli.main(list(arguments))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(arguments, status, captured.out, captured.err)

    yield run
    catalogue._extra_paths[:] = known


LOADED = """
import sys, json, runpy
sys.argv = ["symgen", *{arguments!r}]
try:
    runpy.run_module("symgen", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("sympy", "scipy", "hypothesis", "mpmath")
                        or m.startswith("symgen.engine") or m.startswith("symgen_derivations"))))
"""


@pytest.mark.parametrize("arguments", [["list"], ["list", "--json"], ["show", "kl_normal"],
                                       ["show", "kl_normal", "--format", "latex"],
                                       ["show", "diffusion_posterior", "--format", "markdown"],
                                       ["show", "kl_normal", "--json"], ["show", "kl_nrmal"]])
def test_list_and_show_answer_from_the_index_without_the_engine(arguments, tmp_path):
    assert records.current_catalogue() is not None, "the index is stale: run `symgen build`"
    result = subprocess.run([sys.executable, "-c", LOADED.format(arguments=arguments)], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [], result.stderr


def test_show_gives_the_proved_steps_in_each_format():
    text = symgen_command("show", "kl_std_normal").stdout
    assert "proved: SymPy" in text and "expm1mx(logvar)" in text and "why:" in text
    latex = symgen_command("show", "kl_std_normal", "--format", "latex").stdout
    assert r"\begin{align*}" in latex and r"\operatorname{expm1mx}" in latex and r"\log \sigma^{2}" in latex
    markdown = symgen_command("show", "kl_std_normal", "--format", "markdown").stdout
    assert markdown.startswith("# `kl_std_normal`") and "$$" in markdown
    record = json.loads(symgen_command("show", "kl_std_normal", "--json").stdout)
    assert record["name"] == "kl_std_normal" and record["outputs"][0]["steps"][1]["proof"].startswith("SymPy")


def test_list_json_has_every_derivation():
    entries = json.loads(symgen_command("list", "--json").stdout)
    assert sorted(entry["name"] for entry in entries) == symgen.derivations()
    assert {"name", "title", "kind", "params", "outputs", "sections", "topic"} <= set(entries[0])


@pytest.mark.parametrize("command", [["show", "kl_nrmal"], ["verify", "kl_nrmal"], ["export", "kl_nrmal"],
                                     ["check", "kl_nrmal", "x"]])
def test_a_typo_gets_did_you_mean_and_status_2(command, symgen_in_process):
    result = symgen_in_process(*command)
    assert result.returncode == 2
    assert "did you mean kl_normal" in result.stderr and "Traceback" not in result.stderr


def test_an_unreadable_candidate_is_status_2_in_one_line(symgen_in_process):
    result = symgen_in_process("check", "kl_std_normal", "exp(")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version():
    result = symgen_command("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"symgen {symgen.__version__}"


def test_path_is_accepted_after_the_subcommand(tmp_path):
    user = tmp_path / "square.py"
    user.write_text("import sympy as sp\nfrom symgen.engine import Derivation, Param, Real\n"
                    "x = sp.Symbol('x', real=True)\n"
                    "user_square = Derivation('user_square', title='a square', kind='identity', references=[],\n"
                    "                         params=[Param(x, Real(-1, 1), 'x')])\n"
                    "user_square.define((x + 1)**2, 'definition').step(x**2 + 2*x + 1, 'expand')\n")
    before = symgen_command("--path", str(user), "show", "user_square", cwd=tmp_path)
    after = symgen_command("show", "user_square", "--path", str(user), cwd=tmp_path)
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout and "user_square: a square" in after.stdout
    listed = symgen_command("list", "--path", str(user), cwd=tmp_path)
    assert "user_square" in listed.stdout and "kl_normal" in listed.stdout


def test_quiet_silences_progress(symgen_in_process):
    loud = symgen_in_process("verify", "kl_std_normal", "--examples", "2")
    quiet = symgen_in_process("verify", "kl_std_normal", "--examples", "2", "-q")
    assert loud.returncode == quiet.returncode == 0
    assert "kl_std_normal" in loud.stderr and quiet.stderr == ""


def test_every_argument_has_help():
    def actions(parser):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):   # the subcommands
                for sub in action.choices.values():
                    yield from actions(sub)
            elif action.dest not in ("help", "version"):
                yield parser.prog, action

    missing = [(prog, action.dest) for prog, action in actions(cli.parser()) if not action.help]
    assert missing == []


def test_no_hypothesis_directory_is_left_behind(tmp_path):
    result = symgen_command("check", "kl_std_normal", "(exp(logvar) + loc**2 - 1 - logvar)/2", "--examples", "3",
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".hypothesis").exists()


def test_a_stale_index_falls_back_to_the_engine(monkeypatch, capsys):
    # A checkout whose derivation modules changed since the build: show derives afresh.
    monkeypatch.setattr(records, "current_catalogue", lambda: None)
    assert cli.main(["show", "kl_std_normal", "--no-prove", "-q"]) == 0
    assert "expm1mx(logvar)" in capsys.readouterr().out


def test_verify_in_parallel_processes_gives_the_same_table(symgen_in_process):
    names = ["kl_std_normal", "score_normal", "bits_per_dim"]
    serial = symgen_in_process("verify", *names, "--examples", "2", "--json", "-q")
    parallel = symgen_in_process("verify", *names, "--examples", "2", "--json", "-q", "--jobs", "2")
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    rows = [[(row["derivation"], row["check"], row["passed"], row["summary"]) for row in json.loads(out)["rows"]]
            for out in (serial.stdout, parallel.stdout)]
    assert rows[0] == rows[1]


def test_check_exit_status(symgen_in_process):
    verified = symgen_in_process("check", "kl_std_normal", "(exp(logvar) + loc**2 - 1 - logvar)/2",
                                 "--examples", "5")
    assert verified.returncode == 0 and verified.stdout.startswith("verified")
    refuted = symgen_in_process("check", "kl_std_normal", "(exp(logvar) + loc**2 - logvar)/2")
    assert refuted.returncode == 1 and "counterexample" in refuted.stdout
    unreadable = symgen_in_process("check", "kl_std_normal", "exp(")
    assert unreadable.returncode == 2


def test_verify_json_and_exit_status(symgen_in_process):
    result = symgen_in_process("verify", "kl_std_normal", "--json", "--examples", "5")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] and {row["kind"] for row in payload["rows"]} >= {"proof", "accuracy", "mean"}
    assert "kl_std_normal" in result.stderr      # the progress display


def test_verify_fails_on_a_broken_derivation(tmp_path, symgen_in_process):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import sympy as sp\nfrom symgen.engine import Derivation, Param, Real\n"
        "x = sp.Symbol('x', real=True)\n"
        "broken_square = Derivation('broken_square', title='t', kind='identity', references=[],\n"
        "                           params=[Param(x, Real(-1, 1), 'x')])\n"
        "broken_square.define((x + 1)**2, 'definition').step(x**2 + 1, 'a wrong expansion')\n")
    result = symgen_in_process("--path", str(broken), "verify", "broken_square", "--examples", "3")
    assert result.returncode == 1
    assert "FAIL" in result.stdout


# --- check: NumPy syntax, callables, what cannot be read ------------------------------


@pytest.mark.parametrize("arguments, named", [
    (["kl_std_normal", "np.foo(loc)"], "np.foo"),
    (["kl_std_normal", "exp(loc) + sigma"], "sigma"),
    (["kl_std_normal", "--callable", "no_such_module:kl"], "no_such_module"),
    (["kl_std_normal", "--callable", "json:dumps_nothing"], "dumps_nothing"),
    (["kl_std_normal", "--callable", "math:hypot", "--args", "x=loc,y=sigma"], "sigma"),
    (["kl_std_normal"], "expression or as --callable"),
])
def test_what_cannot_be_read_is_named_in_one_line_with_status_2(arguments, named, symgen_in_process):
    result = symgen_in_process("check", *arguments)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert named in result.stderr
    assert "loc" in result.stderr and "logvar" in result.stderr     # the derivation's parameters


USER_MODULE = '''
import numpy as np

def vae_kl(mu, log_var):
    return -0.5 * (1 + log_var - mu**2 - np.exp(log_var))

def posterior_variance(alpha_bar_t, alpha_bar_prev):
    return 1.01 * (1 - alpha_bar_t / alpha_bar_prev) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)
'''


def test_check_a_callable_from_a_file_with_args_and_json(tmp_path, symgen_in_process):
    module = tmp_path / "my_losses.py"
    module.write_text(USER_MODULE)
    verified = symgen_in_process("check", "kl_std_normal", "--callable", f"{module}:vae_kl",
                                 "--args", "mu=loc,log_var=logvar", "--examples", "5", "--json")
    assert verified.returncode == 0, verified.stderr
    payload = json.loads(verified.stdout)
    assert payload["verified"] and payload["closed_form"]["passed"] and payload["closed_form"]["points"] >= 200
    # The textbook KL term cancels near loc = 0, logvar = 0, among the judged points.
    assert payload["max_relative_error"] > 0.1 and abs(payload["worst_point"]["logvar"]) < 1e-6
    refuted = symgen_in_process("check", "diffusion_posterior.var", "--callable", f"{module}:posterior_variance",
                                "--examples", "5", "--seed", "7")
    assert refuted.returncode == 1
    assert "the proved closed form gives var" in refuted.stdout and "samples there" in refuted.stdout


def test_numpy_syntax_reads_as_the_same_formula(symgen_in_process):
    result = symgen_in_process("check", "kl_normal",
                               "np.log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2) - 0.5",
                               "--examples", "5")
    assert result.returncode == 0, result.stdout + result.stderr


def test_verify_takes_a_seed(symgen_in_process):
    result = symgen_in_process("verify", "bits_per_dim", "--seed", "11", "--examples", "5")
    assert result.returncode == 0, result.stdout
