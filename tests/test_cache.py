"""Derived steps and proofs are computed when asked, once, and kept by content.

A user's derivation file with a step SymPy computes (an integral) and a side effect that
counts how often it runs: importing it computes nothing; a second process finds both the
step and the proofs in the cache; editing the file (another content) computes them again.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from symgen.engine import cache, catalogue

DERIVATION = '''
"""A user's derivation: the mean of an exponential law, by integration."""
import pathlib
import sympy as sp
from symgen.engine import Derivation, IdentityCheck, Param, Positive

rate = sp.Symbol("rate", positive=True)
t = sp.Symbol("t", positive=True)
COUNTER = pathlib.Path(__file__).with_suffix(".runs")


def integrate_the_mean():
    COUNTER.write_text(COUNTER.read_text() + "x" if COUNTER.exists() else "x")
    return sp.integrate(t * rate * sp.exp(-rate * t), (t, 0, sp.oo))


exponential_mean = Derivation(
    "exponential_mean", title="Mean of an exponential law", kind="identity", references=[],
    params=[Param(rate, Positive(0.1, 10), "rate")])
(exponential_mean
 .define(sp.Integral(t * rate * sp.exp(-rate * t), (t, 0, sp.oo)), "definition: E[t] for t ~ Exp(rate)")
 .step(lambda previous: integrate_the_mean(), "SymPy integrates{suffix}")
 .step(1 / rate, "the textbook value"))
exponential_mean.add_check(IdentityCheck(lambda rate: 1 / rate, "1/rate", rtol=1e-12))
'''

PROVE = """
import sys
from symgen.engine import catalogue
found = catalogue.collect([sys.argv[1]])["exponential_mean"]
found.prove()
print(found.output().steps[1].expression, found.output().steps[1].proof)
"""


def run(path, directory):
    result = subprocess.run([sys.executable, "-c", PROVE, str(path)], capture_output=True, text=True,
                            env={**os.environ, "SYMGEN_CACHE_DIR": str(directory),
                                 "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "exponential.py"
    path.write_text(textwrap.dedent(DERIVATION.replace("{suffix}", "")))
    return path


def test_importing_computes_nothing(user_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGEN_CACHE_DIR", str(tmp_path / "cache"))
    found = catalogue.collect([user_file])["exponential_mean"]
    assert not user_file.with_suffix(".runs").exists()
    assert found.output().closed_form == found.output().steps[-1].expression
    assert user_file.with_suffix(".runs").read_text() == "x"     # derived when asked, once
    found.output().steps
    assert user_file.with_suffix(".runs").read_text() == "x"


def test_a_second_process_reads_the_step_and_the_proofs_from_the_cache(user_file, tmp_path):
    first = run(user_file, tmp_path / "cache")
    assert user_file.with_suffix(".runs").read_text() == "x" and "SymPy" in first
    second = run(user_file, tmp_path / "cache")
    assert second == first and user_file.with_suffix(".runs").read_text() == "x"
    assert len(list((tmp_path / "cache").glob("exponential_mean-*.pickle"))) == 1


def test_another_content_is_another_entry(user_file, tmp_path):
    run(user_file, tmp_path / "cache")
    user_file.write_text(textwrap.dedent(DERIVATION.replace("{suffix}", " (edited)")))
    run(user_file, tmp_path / "cache")
    assert user_file.with_suffix(".runs").read_text() == "xx"
    assert len(list((tmp_path / "cache").glob("exponential_mean-*.pickle"))) == 2


def test_off_means_off(user_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGEN_CACHE_DIR", "off")
    assert cache.directory() is None
    with cache.disabled():
        monkeypatch.setenv("SYMGEN_CACHE_DIR", str(tmp_path))
        assert cache.directory() is None


def test_an_unreadable_entry_is_a_miss(user_file, tmp_path):
    run(user_file, tmp_path / "cache")
    for entry in (tmp_path / "cache").glob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert "SymPy" in run(user_file, tmp_path / "cache")
    assert user_file.with_suffix(".runs").read_text() == "xx"


def test_the_catalogues_derived_steps_come_back_from_the_cache_unchanged(tmp_path, monkeypatch):
    # Unpickling rebuilds expressions through their constructors, which may rewrite them
    # (Abs of a determinant): entries are rebuilt unevaluated, so they are what was stored.
    import symgen

    monkeypatch.setenv("SYMGEN_CACHE_DIR", str(tmp_path))
    for name in symgen.derivations():
        found = symgen.derivation(name)
        if not any(step.recipe for output in found.outputs.values() for step in output.written):
            continue
        found.derive()
        stored = found._computed()
        cache.store(cache.key(found), name, {"expressions": stored})
        assert cache.load(cache.key(found), name)["expressions"] == stored, name
