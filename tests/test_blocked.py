"""Blocked, multi-threaded evaluation (symgen/numerics/blocked.py): the same bits as one call
over the whole arrays, for every elementwise formula of the catalogue; threads only for large
inputs; the thread count set by environment or function; safe from several threads at once."""
import subprocess
import sys
import threading

import numpy as np
import pytest

import symgen
import symgen.formulas
from symgen.engine import api
from symgen.numerics import blocked, gaussian, scores, stable

# Small blocks here, so that a test array of 30k entries has several blocks per thread and a
# ragged last one: the logic is the same as at the default sizes (BLOCK, PARALLEL_FROM).
TEST_BLOCK, TEST_PARALLEL_FROM = 4096, 8192
SIZE = 7 * TEST_BLOCK + 1234


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(blocked, "BLOCK", TEST_BLOCK)
    monkeypatch.setattr(blocked, "PARALLEL_FROM", TEST_PARALLEL_FROM)
    monkeypatch.setattr(blocked, "ALWAYS_PARALLEL_FROM", TEST_PARALLEL_FROM)


def blocked_formulas():
    return [name for name in symgen.formulas.__all__
            if hasattr(getattr(symgen.formulas, name), "unblocked")]


def domain_arrays(name, size, seed=0):
    found = api.derivation(name)
    rng = np.random.default_rng(seed)
    points = [found.sample_point(rng) for _ in range(500)]
    return [np.resize(np.array([point[param] for point in points], dtype=np.float64), size)
            for param in found.param_names]


def same(a, b) -> bool:
    parts = (a,) if isinstance(a, np.ndarray) else tuple(a)
    others = (b,) if isinstance(b, np.ndarray) else tuple(b)
    return type(a) is type(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}"))
        for x, y in zip(parts, others))


def test_the_elementwise_formulas_are_blocked():
    names = blocked_formulas()
    assert {"kl_normal", "kl_std_normal", "score_normal", "diffusion_marginal", "gan_losses"} <= set(names)
    # Matrix formulas and those with an implementation of their own are not.
    assert not hasattr(symgen.formulas.kl_mvn, "unblocked")
    assert not hasattr(symgen.formulas.frechet_distance, "unblocked")


@pytest.mark.parametrize("name", blocked_formulas())
def test_bit_identical_to_one_call_over_the_whole_arrays(name, monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    function = getattr(symgen.formulas, name)
    arguments = domain_arrays(name, SIZE)
    for validate in (False, True):
        assert same(function(*arguments, validate=validate), function.unblocked(*arguments, validate=validate))
    # A 2-d batch keeps its shape.
    rows = SIZE // 7
    shaped = [argument[: rows * 7].reshape(rows, 7) for argument in arguments]
    assert same(function(*shaped), function.unblocked(*shaped))


def test_scalars_broadcast_and_float32_keep_their_meaning(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    rng = np.random.default_rng(1)
    loc = rng.standard_normal(SIZE)
    logvar = rng.standard_normal(SIZE)
    kl = symgen.formulas.kl_std_normal
    assert same(kl(loc, 0.25), kl.unblocked(loc, 0.25))
    assert same(kl(loc.astype(np.float32), logvar.astype(np.float32)),
                kl.unblocked(loc.astype(np.float32), logvar.astype(np.float32)))
    assert kl(loc.astype(np.float32), logvar.astype(np.float32)).dtype == np.float32
    # An argument broadcast along an axis is not copied to block it: the formula is called whole.
    assert same(kl(loc[: SIZE // 5 * 5].reshape(-1, 5), logvar[:5]),
                kl.unblocked(loc[: SIZE // 5 * 5].reshape(-1, 5), logvar[:5]))
    # Arguments by name.
    assert same(kl(loc=loc, logvar=logvar), kl.unblocked(loc, logvar))


def test_a_bad_argument_in_a_late_block_is_named_as_an_unblocked_call_names_it(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    arguments = domain_arrays("kl_normal", SIZE)
    arguments[3][SIZE - 3] = -1.0          # scale_q in the last block
    arguments[1][SIZE // 2] = np.nan       # scale_p in a middle block: named first, as unblocked
    with pytest.raises(ValueError) as unblocked_error:
        symgen.formulas.kl_normal.unblocked(*arguments)
    with pytest.raises(ValueError) as blocked_error:
        symgen.formulas.kl_normal(*arguments)
    assert str(blocked_error.value) == str(unblocked_error.value)
    assert "scale_p" in str(blocked_error.value)


def near_equal_normals(size, seed=0):
    """kl_normal arguments of which about a third take its stable branch (KL < 0.01)."""
    rng = np.random.default_rng(seed)
    loc_p, scale_p = rng.standard_normal(size), np.exp(rng.uniform(-2, 2, size))
    near = rng.random(size) < 1 / 3
    loc_q = np.where(near, loc_p + 1e-3 * scale_p * rng.standard_normal(size), rng.standard_normal(size))
    scale_q = np.where(near, scale_p * (1 + 1e-3 * rng.standard_normal(size)), np.exp(rng.uniform(-2, 2, size)))
    return [loc_p, scale_p, loc_q, scale_q]


def test_the_refinements_of_all_blocks_are_made_in_one_call_at_the_end(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    arguments = near_equal_normals(SIZE)
    made = []
    original = stable.make_refinements
    monkeypatch.setattr(stable, "make_refinements",
                        lambda refinements, outputs: (made.append(list(refinements)), original(refinements, outputs)))
    calls = []
    original_log1pmx = stable.log1pmx
    monkeypatch.setattr(stable, "log1pmx", lambda u, *rest: (calls.append(len(u)), original_log1pmx(u, *rest))[1])
    kl = symgen.formulas.kl_normal
    result = kl(*arguments, validate=False)
    # The branch ran once, on the entries of every block (the probe and each block collected
    # theirs), and the values are those of one call over the whole arrays.
    [refinements] = made
    assert len({refinement.function.__code__ for refinement, _ in refinements}) == 1
    assert len(refinements) >= 8
    assert calls == [sum(refinement.index.size for refinement, _ in refinements)]
    assert calls[0] == np.count_nonzero(kl.unblocked(*arguments, validate=False) < 0.01) > SIZE // 4
    monkeypatch.setattr(stable, "log1pmx", original_log1pmx)
    assert same(result, kl.unblocked(*arguments, validate=False))


def test_only_the_blocked_formulas_own_refinements_wait(monkeypatch):
    # A formula whose whole output is a refine and whose branch and body call other formulas
    # with refines of their own (kl_normal's, log1pmx's): those are made where they are called,
    # and the result is the one call's, bit for bit.
    monkeypatch.setattr(blocked, "_threads", 2)
    kl = symgen.formulas.kl_normal

    def outer(loc_p, scale_p, loc_q, scale_q, *, validate=True):
        inner = kl(loc_p, scale_p, loc_q, scale_q, validate=validate)    # inside a block: called as is
        # Its own branch where KL > 1, far from kl_normal's (KL < 0.01): the entries that
        # kl_normal refines keep 2 KL, from kl_normal's refined values.
        return stable.refine(inner > 1.0, 2.0 * inner, lambda u: 3.0 * stable.log1pmx(u) + 1.0,
                             scale_p / scale_q - 1.0, in_place=True, output=0)

    blocked_outer = blocked.elementwise(outer)
    arguments = near_equal_normals(SIZE, seed=3)
    assert same(blocked_outer(*arguments), outer(*arguments))


def test_every_block_and_refinement_runs_under_the_callers_floating_point_settings(monkeypatch):
    # np.errstate is a context variable: the pool's threads get the caller's. The overflow is
    # in the last block only (in the body) or in a refinement (made after the blocks).
    monkeypatch.setattr(blocked, "_threads", 2)

    def in_the_body(x, *, validate=True):
        return np.exp(x)

    def in_a_refinement(x, *, validate=True):
        return stable.refine(x > 700.0, np.minimum(x, 1.0), lambda x: np.exp(x), x, in_place=True, output=0)

    x = np.linspace(0.0, 720.0, SIZE)
    for formula in (in_the_body, in_a_refinement):
        function = blocked.elementwise(formula)
        with np.errstate(over="ignore"):
            assert same(function(x), formula(x))
        for _ in range(5):     # whichever thread takes the last block
            with np.errstate(over="raise"), pytest.raises(FloatingPointError):
                function(x)


def test_the_parts_of_a_batch_run_under_the_callers_floating_point_settings(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)

    @blocked.over_batch(1)
    def row_exp(x, *, validate=True):
        return np.exp(x).sum(axis=-1)

    x = np.zeros((1024, 64))
    x[-1, -1] = 800.0                 # overflows in the last part only
    with np.errstate(over="ignore"):
        assert same(row_exp(x), row_exp.unblocked(x))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        row_exp(x)


def test_safe_when_called_from_several_threads_at_once(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    inputs = [domain_arrays("kl_normal", SIZE, seed) for seed in range(6)]
    expected = [symgen.formulas.kl_normal.unblocked(*arguments) for arguments in inputs]
    results = [None] * len(inputs)

    def work(index):
        for _ in range(3):
            results[index] = symgen.formulas.kl_normal(*inputs[index])

    workers = [threading.Thread(target=work, args=(index,)) for index in range(len(inputs))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(same(result, reference) for result, reference in zip(results, expected))


def test_thread_count_from_the_environment_and_the_function(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", None)
    monkeypatch.setenv(blocked.ENVIRONMENT_VARIABLE, "3")
    assert blocked.threads() == 3
    symgen.set_threads(1)                 # the same function, from the package
    assert symgen.threads() == blocked.threads() == 1
    blocked.set_threads(None)
    monkeypatch.delenv(blocked.ENVIRONMENT_VARIABLE)
    assert blocked.threads() >= 1
    with pytest.raises(ValueError, match="count"):
        blocked.set_threads(0)
    monkeypatch.setattr(blocked, "_threads", None)
    monkeypatch.setenv(blocked.ENVIRONMENT_VARIABLE, "many")
    with pytest.raises(ValueError, match=blocked.ENVIRONMENT_VARIABLE):
        blocked.threads()


def test_no_threads_for_small_inputs_and_none_with_one_thread():
    """In a fresh interpreter: a call below PARALLEL_FROM entries starts no thread; a large one
    starts the pool; SYMGEN_NUM_THREADS=1 never does."""
    script = (
        "import threading, numpy as np, symgen\n"
        "from symgen.numerics import blocked\n"
        "pool = lambda: sum(t.name.startswith('symgen') for t in threading.enumerate())\n"
        "small = np.ones(blocked.PARALLEL_FROM - 1)\n"
        "symgen.kl_normal(small, small, small, small)\n"
        "print(pool())\n"
        "large = np.ones(blocked.ALWAYS_PARALLEL_FROM)\n"
        "symgen.kl_normal(large, large, large, large)\n"
        "print(pool())\n")
    counts = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**__import__("os").environ, "SYMGEN_NUM_THREADS": "2"}).stdout.split()
    assert counts[0] == "0" and int(counts[1]) >= 1
    single = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**__import__("os").environ, "SYMGEN_NUM_THREADS": "1"}).stdout.split()
    assert single == ["0", "0"]


def test_between_the_thresholds_threads_only_for_a_formula_measured_costly(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    monkeypatch.setattr(blocked, "ALWAYS_PARALLEL_FROM", 4 * SIZE)
    arguments = domain_arrays("kl_normal", SIZE)
    started = []
    pool = blocked._executor
    monkeypatch.setattr(blocked, "_executor", lambda count: started.append(count) or pool(count))
    function = symgen.formulas.kl_normal
    for cost, threaded in ((float("inf"), False), (0.0, True)):
        monkeypatch.setattr(blocked, "PARALLEL_COST_NS", cost)
        started.clear()
        function.cost_ns[0] = None         # not yet measured at this size
        first, second = function(*arguments), function(*arguments)
        assert function.cost_ns[0] > 0   # measured on the first call of the size, made whole
        assert same(first, second) and same(first, function.unblocked(*arguments))
        assert bool(started) is threaded
    function.cost_ns[0] = None


def test_arguments_that_do_not_broadcast_get_the_formulas_own_message():
    with pytest.raises(ValueError) as unblocked_error:
        symgen.formulas.kl_std_normal.unblocked(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError) as blocked_error:
        symgen.formulas.kl_std_normal(np.zeros(3), np.zeros(2))
    assert str(blocked_error.value) == str(unblocked_error.value)


# The batched matrix formulas, split along the leading batch axis (blocked.over_batch).

def covariances(rng, shape, d):
    factor = rng.normal(size=shape + (d, d))
    return factor @ np.swapaxes(factor, -1, -2) + 0.5 * np.eye(d)


@pytest.mark.parametrize("d, batch", [(1, (9,)), (3, (37,)), (8, (7, 5)), (30, (7,))])
def test_batched_matrix_formulas_are_bit_identical_to_one_call(d, batch, monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 3)
    monkeypatch.setattr(blocked, "BATCH_WORK_FROM", 1)
    rng = np.random.default_rng(d)
    loc_p, loc_q = rng.normal(size=batch + (d,)), rng.normal(size=batch + (d,))
    cov_p, cov_q = covariances(rng, batch, d), covariances(rng, batch, d)
    near = cov_p.copy()
    near[..., 0, 0] *= 1 + 1e-12          # entries on the near-agreement route too
    kl, score = gaussian.kl_mvn, scores.score_mvn
    calls = [
        (kl, (loc_p, cov_p, loc_q, cov_q)),
        (kl, (loc_p, near, loc_p, cov_p)),
        (kl, (loc_p, cov_p[0], loc_q, cov_q)),             # one covariance shared by the batch
        (kl, (loc_p[:1], cov_p, loc_q, cov_q[:1])),         # broadcast along the leading axis
        (score, (loc_p, loc_q, cov_q)),
        (score, (loc_p.astype(np.float32), loc_q[0].astype(np.float32), cov_q.astype(np.float32))),
    ]
    pools = []
    original = blocked._executor
    monkeypatch.setattr(blocked, "_executor", lambda count: pools.append(count) or original(count))
    for function, arguments in calls:
        cores = (1, 1, 2) if function is score else (1, 2, 1, 2)
        assert blocked._batch_plan(arguments, cores, 3)
        # Up to gaussian.FACTOR_WHOLE_UP_TO the call itself is not split (its Cholesky
        # factorizations are made whole), what follows them is.
        outer = blocked._batch_plan(arguments, cores, 3, gaussian.FACTOR_WHOLE_UP_TO + 1)
        assert (outer is None) == (d <= gaussian.FACTOR_WHOLE_UP_TO)
        del pools[:]
        result = function(*arguments)
        assert pools          # split at one level or the other
        del pools[:]
        assert same(result, function.unblocked(*arguments))
        assert not pools      # .unblocked at neither


def test_batched_matrix_formulas_split_only_large_work_and_name_bad_arguments(monkeypatch):
    monkeypatch.setattr(blocked, "_threads", 2)
    rng = np.random.default_rng(1)
    loc, cov = rng.normal(size=(64, 4)), covariances(rng, (64,), 4)
    assert blocked._batch_plan([loc, cov, loc, cov], (1, 2, 1, 2), 2) is None   # 64 * 4^3 units
    monkeypatch.setattr(blocked, "BATCH_WORK_FROM", 1)
    plan = blocked._batch_plan([loc, cov[0], loc[:1], cov], (1, 2, 1, 2), 2)
    assert [sliced for _, sliced in plan] == [True, False, False, True]
    bad = cov.copy()
    bad[50] = -np.eye(4)                 # in the second thread's part
    for arguments, name in (((loc, cov, loc, bad), "cov_q"), ((loc, bad, loc, cov), "cov_p")):
        with pytest.raises(ValueError) as unblocked_error:
            gaussian.kl_mvn.unblocked(*arguments)
        with pytest.raises(ValueError) as blocked_error:
            symgen.kl_mvn(*arguments)
        assert str(blocked_error.value) == str(unblocked_error.value) and name in str(blocked_error.value)


def test_the_readme_and_the_architecture_page_state_the_thresholds_in_force(monkeypatch):
    from pathlib import Path
    monkeypatch.undo()                    # the module's own values, not the small test blocks
    root = Path(__file__).resolve().parents[1]
    power = lambda value: f"2^{value.bit_length() - 1}"  # noqa: E731
    for page in (root / "README.md", root / "docs" / "architecture.md"):
        text = " ".join(page.read_text().split())
        assert f"blocks of {blocked.BLOCK}" in text
        assert f"from {power(blocked.PARALLEL_FROM)}" in text and f"from {power(blocked.ALWAYS_PARALLEL_FROM)}" in text
        assert f"{blocked.PARALLEL_COST_NS} ns per entry" in text
        assert f"from {power(blocked.BATCH_WORK_FROM)} batch entries x d^3" in text


def test_a_forked_child_gets_a_pool_of_its_own():
    """A process forked after the pool started (a DataLoader worker) has the pool object but
    none of its threads; its blocked calls must start threads of their own, not wait forever."""
    script = (
        "import os, sys, numpy as np, symgen\n"
        "from symgen.numerics import blocked\n"
        "large = np.ones(blocked.ALWAYS_PARALLEL_FROM)\n"
        "symgen.kl_normal(large, large, large, large)\n"
        "assert blocked._pool is not None\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    import signal; signal.alarm(60)  # a hung child ends itself\n"
        "    value = symgen.kl_normal(large, large, large, large)\n"
        "    os._exit(0 if value.shape == large.shape and blocked._pool is not None else 3)\n"
        "_, status = os.waitpid(child, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "SYMGEN_NUM_THREADS": "2"})
    assert result.stdout.split() == ["0"], result.stderr
