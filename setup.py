"""Builds the Cython core ``conexe._core``.

Environment switches (read at build time):

* ``CONEXE_NO_EXTENSIONS=1``: skip the extension; conexe runs on its
  pure-Python twin.
* ``CONEXE_SANITIZE=1``: build with AddressSanitizer and
  UndefinedBehaviorSanitizer (run with ``LD_PRELOAD=$(gcc
  -print-file-name=libasan.so)``; see README).
* ``CONEXE_DEBUG=1``: ``-O0 -g`` with assertions on.
"""

import os

from setuptools import Extension, setup

NO_EXTENSIONS = bool(os.environ.get("CONEXE_NO_EXTENSIONS"))
SANITIZE = bool(os.environ.get("CONEXE_SANITIZE"))
DEBUG = bool(os.environ.get("CONEXE_DEBUG"))


def extensions():
    if NO_EXTENSIONS:
        print("CONEXE_NO_EXTENSIONS is set: building the pure-Python package only")
        return []
    from Cython.Build import cythonize

    compile_args = ["-O3", "-Wno-unused-function"]
    link_args = []
    macros = []
    if DEBUG or SANITIZE:
        compile_args = ["-O1" if SANITIZE else "-O0", "-g", "-UNDEBUG", "-fno-omit-frame-pointer"]
    if SANITIZE:
        flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        compile_args += flags
        link_args += flags
    ext = Extension(
        "conexe._core",
        ["src/conexe/_core.pyx"],
        include_dirs=["include"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=macros,
    )
    return cythonize(
        [ext],
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=False,
    )


setup(ext_modules=extensions())
