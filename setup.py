"""Build the Cython extension; all metadata lives in pyproject.toml.

OpenMP is used when the compiler supports it (checked by compiling and linking a
tiny program with -fopenmp, as scikit-learn does); otherwise the kernels build
serially. The flag goes to both the compile and the link step: compile-only leaves
an undefined ``omp_*`` symbol that fails at import.
"""
import os
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += omp_get_num_threads() > 0;
        return n > 0 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or ([], []) if unsupported."""
    if os.environ.get("SKRANK_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(
                    objs, "probe", output_dir=tmp, extra_postargs=lflags
                )
            except Exception:  # noqa: BLE001 - any compiler/linker failure means "no OpenMP"
                continue
            return cflags, lflags
    print("skrank: the C compiler does not support OpenMP; building serial kernels")
    return [], []


class BuildExt(build_ext):
    def build_extensions(self):
        cflags, lflags = openmp_flags(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args += cflags
            ext.extra_link_args += lflags
        super().build_extensions()


extensions = [
    Extension(
        f"skrank.{name}",
        [f"skrank/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # no fused multiply-adds: an expression must round the same way in every
        # loop it is compiled into (the kl exps: vectorised, with FMA in the AVX-512
        # clone, and one at a time), or tied entries would differ in their last bits
        extra_compile_args=["-O3", "-ffp-contract=off"] if sys.platform != "win32" else [],
    )
    # _pav: the PAV kernels; _reference_rank: soft rank against a fitted reference
    for name in ("_pav", "_reference_rank")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
