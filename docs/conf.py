"""Sphinx configuration: the API reference, built from the docstrings, and
the guides in this folder (Markdown, read by MyST).

Build it (CI does, with warnings as errors)::

    pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import re

import conexe

project = "conexe"
author = "conexe developers"
copyright = "2026, conexe developers"
release = conexe.__version__
version = release

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The API as users see it: documented in the order the source gives it,
# signatures with their types.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

# MyST: anchors for the headings, so "[x](#a-heading)" links resolve.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "alabaster"
html_title = f"conexe {release}"


# A function of the C core carries its signature as its docstring's first
# line (Cython's embedsignature). Autodoc reads it there only under the
# function's own name, and ConcurrentExecutor.submit is the core's
# executor_submit: take the signature from that line, and drop the line.
EMBEDDED_SIGNATURE = re.compile(r"^\w+\((.*)\)(?:\s*->\s*(.+))?$")
COMPILED = ("cython_function_or_method", "builtin_function_or_method", "method_descriptor")


def _embedded(obj):
    if type(obj).__name__ not in COMPILED:
        return None
    return EMBEDDED_SIGNATURE.match((obj.__doc__ or "").split("\n", 1)[0])


def _signature(app, what, name, obj, options, signature, return_annotation):
    found = _embedded(obj)
    if found is None:
        return None
    params = re.sub(r"^self,?\s*", "", found.group(1))
    return f"({params})", found.group(2)


def _docstring(app, what, name, obj, options, lines):
    if _embedded(obj) is not None and lines:
        del lines[0]
        while lines and not lines[0].strip():
            del lines[0]


def setup(app):
    app.connect("autodoc-process-signature", _signature)
    app.connect("autodoc-process-docstring", _docstring)
