"""Every registered array function on every array backend, against NumPy: the value, and
the first derivative where the function has one; and its twin in each autograd adapter
(torch, JAX), whose autograd vector-Jacobian product must equal NumPy's. The cases come
from the operator registry, so a newly registered function is tested here with no edit
(its arguments are built from their roles; a new static argument needs an example value
in STATIC, and a function without adapter twins a line in NOT_ADAPTED). Edge cases stay
in the per-backend test files."""

import importlib.util

import numpy as np
import pytest

import skrank
from skrank import _registry

import _fake_cupy

# example values of static arguments, by name
STATIC = {"k": 2, "q": [0.25, 0.5], "proportiontocut": 0.2}


def _case(record, rng):
    """(positional args, keyword args, names of the arrays a backend converts)."""
    shape = (8, 2) if record.kind == "metric" else (3, 6)  # metric: (samples, outputs)
    values = {record.main: rng.normal(size=shape)}
    for name in record.aligned:  # targets, relevances, weights: positive suits them all
        values[name] = rng.uniform(0.5, 3.0, shape)
    for name in record.per_row:
        if name == _registry.STRENGTH:
            values[name] = rng.uniform(0.2, 1.0, shape[:-1])
        else:  # class labels, one per row
            values[name] = rng.integers(0, shape[-1], shape[:-1])
    args = tuple(values.pop(name, STATIC.get(name)) for name in record.positional)
    return args, values, {record.main, *record.aligned}


def _numpy(a):
    return a if isinstance(a, (float, np.ndarray, np.generic)) else np.asarray(a)


class _Backend:
    """Arrays to a backend (to_backend) and back to NumPy (to_numpy)."""

    def __init__(self, name, to_backend, to_numpy):
        self.name, self.to_backend, self.to_numpy = name, to_backend, to_numpy


def _array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    return _Backend("array_api_strict", xp.asarray,
                    lambda a: a if isinstance(a, float) else np.from_dlpack(a))


def _dask():
    da = pytest.importorskip("dask.array")
    return _Backend("dask", lambda a: da.from_array(a, chunks=(1,) + a.shape[1:]),
                    lambda a: np.asarray(a.compute()) if hasattr(a, "compute") else a)


def _cupy_stand_in(monkeypatch):
    _fake_cupy.install(monkeypatch)
    cp = _fake_cupy.module
    return _Backend("cupy (stand-in)", cp.asarray,
                    lambda a: a.get() if hasattr(a, "get") else _numpy(a))


@pytest.fixture(params=["array_api_strict", "cupy_stand_in", "dask"])
def backend(request, monkeypatch):
    if request.param == "cupy_stand_in":
        yield _cupy_stand_in(monkeypatch)
        _fake_cupy.uninstall()
    else:
        yield {"array_api_strict": _array_api_strict, "dask": _dask}[request.param]()


RECORDS = _registry.records()


@pytest.mark.parametrize("record", RECORDS, ids=[r.public_name for r in RECORDS])
def test_value_and_derivative_match_numpy(record, backend):
    rng = np.random.default_rng(0)
    args, kwargs, arrays = _case(record, rng)

    def convert(named):
        return {name: backend.to_backend(v) if name in arrays else v
                for name, v in named.items()}

    pos = dict(zip(record.positional, args))
    b_args, b_kwargs = tuple(convert(pos).values()), convert(kwargs)
    want = record.fun(*args, **kwargs)
    got = backend.to_numpy(record.fun(*b_args, **b_kwargs))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    if record.structured is None:
        return
    argnum = record.argnum
    value, vjp_fn = skrank.vjp(record.fun, *args, argnums=argnum, **kwargs)
    b_value, b_vjp_fn = skrank.vjp(record.fun, *b_args, argnums=argnum, **b_kwargs)
    np.testing.assert_allclose(backend.to_numpy(b_value), value, rtol=1e-12, atol=1e-14)
    g = rng.normal(size=np.shape(value))
    b_g = backend.to_backend(g) if np.ndim(g) else 1.0
    want_grad = vjp_fn(g if np.ndim(g) else 1.0)
    np.testing.assert_allclose(backend.to_numpy(b_vjp_fn(b_g)), want_grad,
                               rtol=1e-11, atol=1e-13)
    if argnum == 0:  # the array operators: jvp too
        u = rng.normal(size=np.shape(args[0]))
        want_jvp = skrank.jvp(record.fun, *args[:1], u, *args[1:], **kwargs)[1]
        b_jvp = skrank.jvp(record.fun, b_args[0], backend.to_backend(u), *b_args[1:],
                           **b_kwargs)[1]
        np.testing.assert_allclose(backend.to_numpy(b_jvp), want_jvp, rtol=1e-11,
                                   atol=1e-13)


def test_every_backend_is_reachable_here():
    """The fixture's backends that this environment has (the others skip above)."""
    have = {name for name, module in (("array_api_strict", "array_api_strict"),
                                      ("dask", "dask")) if importlib.util.find_spec(module)}
    assert "array_api_strict" in have  # the test extra installs it


# ------------------------------------------------------------------- autograd adapters
# registered functions the adapters do not offer, and why: a new registered function
# must get an adapter twin or a line here
NOT_ADAPTED = {
    "skrank.isotonic_regression": "no derivative (not a soft operator)",
    "skrank.metrics.soft_spearman": "a scorer's metric; spearman_loss is the trainable form",
}


class _Adapter:
    """An autograd adapter: its module, tensors in and out, and the vector-Jacobian
    product of a function in one argument."""

    def __init__(self, name):
        self.name = name
        if name == "torch":
            self.torch = pytest.importorskip("torch")
            self.module = importlib.import_module("skrank.torch")
        else:
            jax = pytest.importorskip("jax")
            jax.config.update("jax_enable_x64", True)
            self.jax, self.module = jax, importlib.import_module("skrank.jax")

    def array(self, a):
        if self.name == "torch":
            return self.torch.as_tensor(np.asarray(a))
        return self.jax.numpy.asarray(a)

    def vjp(self, fun, x, g):
        """(fun(x), the vector-Jacobian product with g), both as NumPy."""
        if self.name == "torch":
            x = self.array(x).requires_grad_(True)
            value = fun(x)
            value.backward(self.array(g) if np.ndim(g) else None)
            return value.detach().numpy(), x.grad.numpy()
        value, back = self.jax.vjp(fun, self.array(x))
        return np.asarray(value), np.asarray(back(self.array(g).astype(value.dtype))[0])


@pytest.mark.parametrize("record", RECORDS, ids=[r.public_name for r in RECORDS])
@pytest.mark.parametrize("adapter", ["torch", "jax"])
def test_adapters_match_numpy(record, adapter):
    """Every registered function's adapter twin: value and vector-Jacobian product
    equal NumPy's (its derivative is exact, float64)."""
    if record.public_name in NOT_ADAPTED:
        pytest.skip(NOT_ADAPTED[record.public_name])
    adapter = _Adapter(adapter)
    twin = getattr(adapter.module, record.fun.__name__, None)
    assert twin is not None, f"skrank.{adapter.name} has no {record.fun.__name__}"
    rng = np.random.default_rng(1)
    args, kwargs, arrays = _case(record, rng)
    value, vjp_fn = skrank.vjp(record.fun, *args, argnums=record.argnum, **kwargs)
    g = rng.normal(size=np.shape(value)) if np.ndim(value) else 1.0
    others = {name: (adapter.array(v) if name in arrays or name == "labels" else v)
              for name, v in zip(record.positional, args)}
    diff = record.positional[record.argnum]

    def fun(x):
        call = dict(others, **{diff: x})
        return twin(*[call[name] for name in record.positional], **kwargs)

    got, grad = adapter.vjp(fun, args[record.argnum], g)
    np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad, vjp_fn(g), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["soft_topk_mask", "soft_topk"])
@pytest.mark.parametrize("adapter", ["torch", "jax"])
def test_adapters_magnitude_top_k(name, adapter):
    """by="magnitude" in the adapters: value and derivative as NumPy's (sign-aware)."""
    adapter = _Adapter(adapter)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 7)) * 2
    g = rng.normal(size=x.shape)
    kw = dict(regularization_strength=0.9, by="magnitude")
    value, vjp_fn = skrank.vjp(getattr(skrank, name), x, 3, **kw)
    got, grad = adapter.vjp(lambda t: getattr(adapter.module, name)(t, 3, **kw), x, g)
    np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad, vjp_fn(g), rtol=1e-10, atol=1e-12)
