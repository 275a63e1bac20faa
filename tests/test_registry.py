"""The operator registry: every public array function declares its arguments' roles, its
output's kind and its derivative where it is defined, and the derivative API and the
Dask path serve a function from that record alone."""

import importlib.util
import inspect

import numpy as np
import pytest

import skrank
from skrank import _array_api, _diff, _ops, _registry, losses, metrics

PUBLIC = [skrank.soft_rank, skrank.soft_sort, skrank.isotonic_regression,
          skrank.soft_topk_mask, skrank.soft_topk, skrank.soft_quantile, skrank.soft_median,
          skrank.soft_trimmed_mean, losses.spearman_loss, losses.ndcg_loss,
          losses.topk_loss, metrics.soft_spearman]


def test_every_public_array_function_is_registered():
    records = _registry.records()
    assert [r.fun for r in records] == PUBLIC
    for record in records:
        assert _registry.lookup(record.fun) is record
        assert _registry.lookup(record.fun.__wrapped__) is record  # what dispatch sees
        parameters = inspect.signature(record.fun).parameters
        for name in (record.main, *record.aligned, *record.per_row):
            assert name in parameters
        assert record.kind in _registry.KINDS
        if record.structured is not None:
            # the value-and-structure form takes the same arguments as the function
            assert list(inspect.signature(record.structured).parameters) == list(parameters)
            assert record.positional[record.argnum] == record.differentiable
    assert _registry.lookup(np.sort) is None and _registry.lookup([1]) is None


def test_the_dispatch_modules_name_no_operator():
    """_diff and _dask read records; they import no module that defines an operator."""
    from skrank import _dask

    for module in (_diff, _dask, _array_api, _registry):
        for name in ("_ops", "_stats", "losses", "metrics"):
            assert not hasattr(module, name), (module.__name__, name)


def test_bad_registrations_are_refused():
    with pytest.raises(ValueError, match="kind"):
        _registry.operator(main="x", kind="vector")
    with pytest.raises(ValueError, match="structure"):
        _registry.operator(main="x", kind="same", differentiable="x")
    with pytest.raises(ValueError, match="no argument 'y'"):
        _registry.operator(main="y", kind="same")(lambda x: x)


def _shifted_ranks_structured(x, *, shift=1.0, regularization_strength=1.0, axis=-1):
    value, structure = _ops._soft_rank_structured(
        x, regularization_strength=regularization_strength, axis=axis)
    return value + shift, structure


@pytest.fixture
def shifted_ranks():
    """A new operator, declared by its record alone (then removed again)."""

    @_registry.operator(main="x", kind="same", differentiable="x",
                        structured=_shifted_ranks_structured)
    def shifted_ranks(x, *, shift=1.0, regularization_strength=1.0, axis=-1):
        return _shifted_ranks_structured(x, shift=shift,
                                         regularization_strength=regularization_strength,
                                         axis=axis)[0]

    yield shifted_ranks
    for key in (shifted_ranks, shifted_ranks.__wrapped__):
        del _registry._RECORDS[key]


def test_a_new_operator_needs_only_its_record(shifted_ranks):
    x = np.array([[3.0, 1.0, 2.0], [0.5, 0.7, 0.1]])
    np.testing.assert_array_equal(shifted_ranks(x, shift=2.0), skrank.soft_rank(x) + 2.0)
    value, vjp_fn = skrank.vjp(shifted_ranks, x, shift=2.0)
    g = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(vjp_fn(g), skrank.vjp(skrank.soft_rank, x)[1](g))
    u = np.ones_like(x)
    np.testing.assert_array_equal(skrank.jvp(shifted_ranks, x, u)[1],
                                  skrank.jvp(skrank.soft_rank, x, u)[1])
    assert "shifted_ranks" in str(pytest.raises(TypeError, skrank.vjp, len, x).value)
    if importlib.util.find_spec("dask") is not None:
        import dask.array as da

        dx = da.from_array(x, chunks=(1, 3))
        np.testing.assert_array_equal(shifted_ranks(dx, shift=2.0).compute(),
                                      shifted_ranks(x, shift=2.0))
        np.testing.assert_array_equal(skrank.vjp(shifted_ranks, dx)[1](g).compute(),
                                      vjp_fn(g))
