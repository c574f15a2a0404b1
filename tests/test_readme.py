"""The README's examples run as written."""
import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_python_examples():
    block = re.search(r"```python\n(>>> .*?)```", README, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_own_derivation_example(tmp_path):
    source = re.search(r"```python\n# affine_normal.py\n(.*?)```", README, re.S).group(1)
    (tmp_path / "affine_normal.py").write_text(source)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def symgen(*arguments):
        return subprocess.run([sys.executable, "-m", "symgen", "--path", "affine_normal.py", *arguments],
                              capture_output=True, text=True, cwd=tmp_path, env=environment)

    assert symgen("show", "affine_normal").returncode == 0
    refuted = symgen("check", "affine_normal.var", "gain")
    assert refuted.returncode == 1 and "counterexample" in refuted.stdout
    assert symgen("check", "affine_normal.var", "gain**2", "--examples", "5").returncode == 0


def test_the_shown_commands_print_what_the_readme_says(tmp_path):
    # Every line of the first screen's terminal blocks (but the elided "...") is in what the
    # command prints now.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for block in re.findall(r"```text\n\$ (symgen [^\n]*)\n(.*?)```", README, re.S):
        command, shown = block
        arguments = re.findall(r'"[^"]*"|\S+', command)[1:]
        printed = subprocess.run([sys.executable, "-m", "symgen", *[a.strip('"') for a in arguments]],
                                 capture_output=True, text=True, cwd=tmp_path, env=environment).stdout
        for line in shown.splitlines():
            if line.strip() and line.strip() != "...":
                # A line cut short with "..." in the README is a prefix of the printed one.
                expected = line.rstrip().removesuffix("...").rstrip(" ,")
                assert expected in printed, (command, line)


def test_the_callable_example_prints_what_the_readme_says(tmp_path):
    # "Keep your formulas under test": the script, then what it prints.
    script, shown = re.search(r"## Keep your formulas under test.*?```python\n(.*?)```\n\n```text\n(.*?)```",
                              README, re.S).groups()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                             env=environment).stdout
    for line in shown.splitlines():
        expected = line.rstrip().removesuffix("...").rstrip(" ,")
        assert expected in printed, (line, printed)


def run_script(script, directory):
    """What a README script prints, run in a fresh interpreter from ``directory`` (outside the tree)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=directory,
                          env=environment, check=True).stdout


def test_the_training_step_runs_and_prints_what_the_readme_says(tmp_path):
    # "In a training step": symgen.torch in a VAE step, float32 kept, gradients finite.
    script, shown = re.search(r"## In a training step.*?```python\n(.*?)```\n\n```text\n(.*?)```",
                              README, re.S).groups()
    printed = run_script(script, tmp_path)
    before, after = shown.strip().split("...")
    assert printed.startswith(before) and printed.strip().endswith(after.strip()), printed


def test_the_porting_example_prints_what_the_readme_says(tmp_path):
    # "Porting from ...": the schedules through the clip, the schedule table, zero terminal SNR, FID from
    # features and the DCGAN losses, each line as shown.
    script, shown = re.search(r"```python\n# porting.py\n(.*?)```\n\n```text\n\$ python porting.py\n(.*?)```",
                              README, re.S).groups()
    printed = run_script(script, tmp_path)
    assert printed.split() == shown.split(), printed
