"""The engine on derivations of its own: proofs that must fail, a user's file,
multi-output derivations, distribution checks, and the formula checker."""
import textwrap

import mpmath
import pytest
import sympy as sp

import symgen
from symgen.engine import (Derivation, DerivationError, GaussianExpectation, Param, Positive, Real,
                           catalogue)
from symgen.engine.runner import expression_values, run_check

a, b = sp.symbols("a b", real=True)
scale = sp.Symbol("scale", positive=True)
z = sp.Symbol("z", real=True)


def toy(steps):
    derivation = Derivation("toy", title="toy", kind="identity", references=[],
                            params=[Param(a, Real(-3, 3), "a"), Param(scale, Positive(0.1, 10), "scale")])
    chain = derivation.define(GaussianExpectation((z - a) ** 2, z, a, scale), "definition")
    for expression, reason in steps:
        chain.step(expression, reason)
    return derivation


def test_a_correct_chain_is_proved():
    derivation = toy([(scale**2, "the variance of N(a, scale^2)")]).prove()
    assert derivation.output().steps[1].proof.startswith("SymPy")


@pytest.mark.parametrize("wrong", [scale, 2 * scale**2, scale**2 + 1e-20, scale**2 * (1 + sp.Rational(1, 10**30))])
def test_a_wrong_step_is_rejected(wrong):
    # Off by a factor, a power, and by amounts too small for floats but not for SymPy.
    with pytest.raises(DerivationError, match="toy"):
        toy([(wrong, "a wrong step")]).prove()


def test_an_error_in_a_later_step_names_that_step():
    derivation = toy([(scale**2, "right"), (scale**2 + a, "wrong on purpose")])
    with pytest.raises(DerivationError, match="wrong on purpose"):
        derivation.prove()


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        Derivation("x", title="x", kind="vibes", references=[], params=[])


USER_DERIVATION = '''
"""A user's derivation: the law of an affine map of a standard normal."""
import sympy as sp
from scipy import stats

from symgen.engine import (Derivation, DistributionCheck, GaussianExpectation, MeanCheck, Param,
                           Positive, Real)

shift = sp.Symbol("shift", real=True)
gain = sp.Symbol("gain", positive=True)
z = sp.Symbol("z", real=True)

affine_normal = Derivation(
    "affine_normal", title="Affine map of a standard normal", kind="identity",
    references=["any probability textbook"],
    params=[Param(shift, Real(-5, 5), "shift"), Param(gain, Positive(0.1, 10), "gain")])
affine_normal.define(GaussianExpectation(gain * z + shift, z, 0, 1), "definition of the mean",
                     output="mean").step(shift, "E[z] = 0")
affine_normal.define(GaussianExpectation((gain * z) ** 2, z, 0, 1), "definition of the variance",
                     output="var").step(gain**2, "E[z^2] = 1")


def simulate(rng, n, shift, gain):
    return shift + gain * rng.standard_normal(n)


affine_normal.add_check(MeanCheck(simulate, "sample mean", output="mean", samples=100_000, batches=100))
affine_normal.add_check(DistributionCheck(simulate, lambda mean, var: stats.norm(mean, var ** 0.5),
                                          "samples against N(mean, var)", outputs=("mean", "var")))
'''


@pytest.fixture
def user_derivation(tmp_path):
    path = tmp_path / "affine_normal.py"
    path.write_text(textwrap.dedent(USER_DERIVATION))
    found = catalogue.collect([path])["affine_normal"]
    return found


def test_a_users_file_is_collected_and_proved(user_derivation):
    user_derivation.prove()
    assert list(user_derivation.outputs) == ["mean", "var"]


def test_distribution_check_accepts_the_right_law_and_refutes_wrong_ones(user_derivation):
    check = user_derivation.checks[1]
    right = expression_values(user_derivation, "var", user_derivation.outputs["var"].closed_form)
    assert run_check(user_derivation, check, right, examples=10).passed
    gain = user_derivation.params[1].symbol
    for wrong in (gain, 1.01 * gain**2, gain**2 + 0.05):  # 1% off included
        report = run_check(user_derivation, check, expression_values(user_derivation, "var", wrong),
                           examples=30, shrink=False)
        assert not report.passed, wrong


def test_check_addresses_outputs_of_a_users_derivation(user_derivation, tmp_path):
    catalogue.add_path(user_derivation.source)
    try:
        assert symgen.check("affine_normal.var", "gain**2", examples=10).verified
        refuted = symgen.check("affine_normal.mean", "shift + 0.1")
        assert not refuted.verified
        assert set(refuted.counterexample.point) == {"shift", "gain"}
        with pytest.raises(KeyError, match="outputs"):
            symgen.check("affine_normal", "gain")
    finally:
        catalogue._extra_paths.remove(user_derivation.source)


def test_counterexample_is_shrunk_and_reports_the_statistics():
    result = symgen.check("kl_normal", "log(scale_q/scale_p) + (scale_p**2 + (loc_p - loc_q)**2)/(2*scale_q**2)")
    assert not result.verified
    # The closed form's counterexample is where the difference is largest against its
    # tolerance; the samples' is shrunk by hypothesis.
    assert result.counterexample.check == "the proved closed form"
    example = result.empirical_counterexample
    # Shrinking reaches the simplest point: p = q = N(0, 1), where the KL is 0 and the
    # candidate (missing its -1/2) gives 0.5.
    assert example.point == {"loc_p": 0.0, "scale_p": 1.0, "loc_q": 0.0, "scale_q": 1.0}
    assert example.estimate == 0.0
    assert example.candidate == pytest.approx(0.5)
    assert "counterexample" in str(result)


def test_candidate_with_unknown_names_is_rejected():
    with pytest.raises(ValueError, match="sigma"):
        symgen.check("kl_normal", "log(sigma)")


def test_unknown_derivation_is_a_key_error():
    with pytest.raises(KeyError, match="no derivation"):
        symgen.derivation("kl_nonsense")


def test_verify_reports_proofs_accuracy_and_checks():
    report = symgen.verify(["kl_std_normal"], examples=5)
    kinds = [row.kind for row in report.rows]
    assert kinds[:2] == ["proof", "accuracy"] and kinds.count("mean") == 1
    assert report.passed


def test_parameter_strategy_draws_near_equal_pairs():
    from hypothesis import find

    from symgen.engine.runner import parameter_strategy

    found = symgen.derivation("kl_normal")
    near = find(parameter_strategy(found),
                lambda p: 0 < abs(p["scale_q"] / p["scale_p"] - 1) < 1e-8)
    assert near["scale_q"] != near["scale_p"]


def test_every_check_also_sees_the_fixed_anchor_points():
    # The anchors come from a fixed NumPy seed, not from hypothesis, so a check's power
    # does not depend on the points one hypothesis release generates: with a single
    # hypothesis example, a formula off by a factor is still refuted at an anchor.
    from symgen.engine.runner import ANCHOR_POINTS, edge_points

    found = symgen.derivation("vae_reparameterization_gradient_sin")
    pathwise = next(check for check in found.checks if "d_scale" in check.outputs)
    closed_form = found.outputs["d_scale"].closed_form
    right = run_check(found, pathwise, expression_values(found, "d_scale", closed_form),
                      examples=1, shrink=False)
    assert right.passed and right.points == 1 + ANCHOR_POINTS + len(edge_points(found))
    anchors_only = run_check(found, pathwise, expression_values(found, "d_scale", closed_form / 2),
                             examples=1, shrink=False)
    # hypothesis's one example is the simplest point (loc = 0, where d_scale = 0 for
    # both formulas); the refutation comes from an anchor.
    assert not anchors_only.passed and anchors_only.points > 1


@pytest.mark.parametrize("values, expected_zero", [
    # The noise of a total cancellation, alternating with exact zeros: zero for float64.
    ([1e-50, 1e-100, 1e-200, 1e-400, 0, 1e-1600], True),
    ([1e-50, 1e-100, 1e-200, 1e-400, 1e-800], True),
    # An exact zero at low precision may hide a small true value: keep refining.
    ([0, 0, 0, 2.5e-300, 2.5e-300], False),
])
def test_reference_values_settle_on_zero_only_below_float64s_range(monkeypatch, values, expected_zero):
    from symgen.engine import evaluate as evaluate_module

    sequence = iter(mpmath.mpf(value) for value in values)
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *arguments: next(sequence))
    result = evaluate_module.reference_value(None, None, {})
    assert (result == 0) == expected_zero


def test_the_engines_smallest_complete_example_verifies(tmp_path):
    # The example in symgen/engine/__init__.py's docstring, the one a new contributor reads first.
    import symgen.engine

    docstring = symgen.engine.__doc__
    example = textwrap.dedent(docstring.split("The smallest complete derivation::\n", 1)[1].split("\n\n``symgen", 1)[0])
    (tmp_path / "affine_mean.py").write_text(example)
    found = catalogue.collect([tmp_path / "affine_mean.py"])["affine_mean"]
    catalogue.add_path(tmp_path / "affine_mean.py")
    try:
        report = symgen.verify(["affine_mean"], examples=3)
        assert report.passed and [row.kind for row in report.rows] == ["proof", "accuracy", "mean"]
        assert not symgen.check("affine_mean", "shift + 0.01*gain").verified
    finally:
        catalogue._extra_paths.remove((tmp_path / "affine_mean.py").resolve())
    assert found.output().steps[1].proof.startswith("SymPy")
