"""Every step of every derivation in the catalogue is proved, and every usual slip a
derivation declares is refuted by its empirical checks.

Written once over the catalogue: a new derivation is covered by being in it. A proof
found in the cache (tests/conftest.py) is the proof of exactly these sources: only proofs
that succeeded are stored, under the content of the module, the engine and SymPy.
"""
import pytest

import symgen
from single_check import samples_refutation

CATALOGUE = symgen.derivations()


@pytest.mark.parametrize("name", CATALOGUE)
def test_every_step_is_proved(name):
    found = symgen.derivation(name).prove()
    for output in found.outputs.values():
        assert len(output.steps) >= 2, f"{name}.{output.name} has no step to prove"
        for step in output.steps[1:]:
            assert step.proof.startswith("SymPy"), (output.name, step.reason, step.proof)


SLIPS = [(name, candidate, description, output)
         for name in CATALOGUE for candidate, description, output in symgen.derivation(name).slips]


@pytest.mark.parametrize("name, candidate, description, output", SLIPS,
                         ids=[f"{name}: {description}" for name, _, description, _ in SLIPS])
def test_every_declared_slip_is_refuted(name, candidate, description, output):
    address = f"{name}.{output}" if output else name
    # By the empirical checks alone (the README's claim); the proved closed form refutes
    # every slip as well (tests/test_user_candidates.py, tests/test_check_callables.py).
    assert samples_refutation(address, candidate) is not None, f"{description} was verified"


def test_the_catalogue_declares_its_usual_slips():
    # At least the topics whose tests carried lists of slips declare them now.
    assert len(SLIPS) >= 20
    assert len({name for name, *_ in SLIPS}) >= 10
