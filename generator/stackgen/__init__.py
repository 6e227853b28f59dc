"""stackgen: one stack spec renders a Kubernetes inference stack and the AutoGen configs that use it.

The public surface is what `__all__` lists; every other module is an implementation detail.
"""

from .errors import Problem, StackgenError
from .examples import resolve as load_spec
from .load import load_text
from .plan import Plan, plan
from .render import render_files, write_tree
from .spec import Stack

__all__ = [
    "Plan",
    "Problem",
    "Stack",
    "StackgenError",
    "load_spec",
    "load_text",
    "plan",
    "render_files",
    "write_tree",
]
