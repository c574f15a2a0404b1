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
