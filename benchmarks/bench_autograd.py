"""Benchmark the autograd adapters (skrank.torch, skrank.jax) against a plain sort.

Run from the repository root, with skrank built and torch and/or jax installed::

    python benchmarks/bench_autograd.py            # 1x1e6, 1000x100, 100x1e4, float32
    python benchmarks/bench_autograd.py --quick    # smaller shapes, short budgets

For each shape: the median time of the forward pass and of forward + backward (the
gradient of ``sum(out * g)`` for a fixed random ``g``) of soft_rank and soft_sort (l2,
strength 1) through skrank.torch, divided by ``torch.sort`` (forward) and ``torch.sort``
+ backward on the same tensor in the same run; the same for skrank.jax against
``jnp.sort`` (under ``jax.jit``); and torchsort's soft_rank / soft_sort when torchsort is
installed. One thread everywhere (``torch.set_num_threads(1)``, threadpoolctl limits).
"""

import argparse
import importlib.util
import platform

import numpy as np
from threadpoolctl import threadpool_limits
from _timing import median_time  # benchmarks/_timing.py


def torch_rows(shapes, budget):
    import torch

    from skrank import torch as st
    torch.set_num_threads(1)
    ops = {"soft_rank": st.soft_rank, "soft_sort": st.soft_sort}
    if importlib.util.find_spec("torchsort") is not None:
        import torchsort
        ops["torchsort.soft_rank"] = torchsort.soft_rank
        ops["torchsort.soft_sort"] = torchsort.soft_sort
    for shape in shapes:
        x = torch.from_numpy(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        g = torch.randn(shape)

        def sort_fwd():
            return torch.sort(x, dim=-1).values

        def sort_bwd():
            v = x.detach().requires_grad_()
            (torch.sort(v, dim=-1).values * g).sum().backward()

        base_f, base_b = median_time(sort_fwd, budget), median_time(sort_bwd, budget)
        yield ("torch", shape, "torch.sort", base_f, 1.0, base_b, 1.0)
        for name, op in ops.items():
            def fwd(op=op):
                return op(x, regularization_strength=1.0)

            def bwd(op=op):
                v = x.detach().requires_grad_()
                (op(v, regularization_strength=1.0) * g).sum().backward()

            f, b = median_time(fwd, budget), median_time(bwd, budget)
            yield ("torch", shape, name, f, f / base_f, b, b / base_b)


def jax_rows(shapes, budget):
    import jax
    import jax.numpy as jnp

    from skrank import jax as sj
    for shape in shapes:
        x = jnp.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        g = jnp.asarray(np.random.default_rng(1).normal(size=shape).astype(np.float32))
        sort_f = jax.jit(lambda v: jnp.sort(v, axis=-1))
        sort_b = jax.jit(jax.grad(lambda v: (jnp.sort(v, axis=-1) * g).sum()))
        base_f = median_time(lambda: sort_f(x).block_until_ready(), budget)
        base_b = median_time(lambda: sort_b(x).block_until_ready(), budget)
        yield ("jax", shape, "jnp.sort", base_f, 1.0, base_b, 1.0)
        for name in ("soft_rank", "soft_sort"):
            op = getattr(sj, name)
            fwd = jax.jit(lambda v, op=op: op(v, regularization_strength=1.0))
            bwd = jax.jit(jax.grad(lambda v, op=op: (op(v, regularization_strength=1.0)
                                                     * g).sum()))
            f = median_time(lambda: fwd(x).block_until_ready(), budget)
            b = median_time(lambda: bwd(x).block_until_ready(), budget)
            yield ("jax", shape, name, f, f / base_f, b, b / base_b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes, short budgets")
    args = parser.parse_args()
    shapes = [(1, 10_000), (100, 100)] if args.quick else [(1, 1_000_000), (1000, 100),
                                                           (100, 10_000)]
    budget = 0.2 if args.quick else 1.0
    print(f"# autograd adapters, float32, 1 thread, strength 1; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| framework | shape | op | forward | / sort | fwd+bwd | / sort+bwd |")
    print("|---|---|---|---:|---:|---:|---:|")
    with threadpool_limits(1):
        for name, rows in (("torch", torch_rows), ("jax", jax_rows)):
            if importlib.util.find_spec(name) is None:
                print(f"| {name} | - | not installed | | | | |")
                continue
            for fw, shape, op, f, rf, b, rb in rows(shapes, budget):
                print(f"| {fw} | {shape[0]}x{shape[1]} | {op} | {f * 1e3:.2f} ms | {rf:.2f} | "
                      f"{b * 1e3:.2f} ms | {rb:.2f} |")


if __name__ == "__main__":
    main()
