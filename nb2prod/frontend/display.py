"""Recognise statements that only show something: plots, `df.head()`, `print(...)`.

Production code has no screen. A statement whose only effect is to display is dropped from
the generated code (a cell made only of them is exploration), as Soorgeon and LineaPy do.
The test is conservative: a statement is display only when every call in it is known to be
a pure query or a plotting call; anything that might change state is kept.
"""

from __future__ import annotations

import ast

from nb2prod.frontend.pysyntax import Aliases, dotted_name, keyword, method_chain, root_name
from nb2prod.frontend.vocabulary import TRACKER_MODULES

PLOTTING_MODULES = (
    "matplotlib",
    "seaborn",
    "plotly",
    "IPython.display",
    "IPython.core.display",
    "altair",
    "bokeh",
    "yellowbrick",
    "missingno",
    "pandas.plotting",
    "scikitplot",
    "shap.plots",
)
_DATA_IN_PLOTTING_MODULES = ("yellowbrick.datasets.", "seaborn.load_dataset", "plotly.data.")
_DISPLAY_FUNCTIONS = frozenset(
    {"print", "display", "pprint.pprint", "pprint", "IPython.display.display"}
)
_SKLEARN_DISPLAYS = ("sklearn.metrics.", "sklearn.inspection.", "sklearn.calibration.")
# Methods that only compute a view or summary: a call whose result is then unused shows it.
_QUERY_METHODS = frozenset(
    {
        "head",
        "tail",
        "describe",
        "info",
        "sample",
        "value_counts",
        "nunique",
        "unique",
        "isna",
        "isnull",
        "notna",
        "notnull",
        "sum",
        "mean",
        "median",
        "min",
        "max",
        "std",
        "var",
        "count",
        "agg",
        "aggregate",
        "groupby",
        "round",
        "sort_values",
        "sort_index",
        "corr",
        "cov",
        "quantile",
        "memory_usage",
        "plot",
        "hist",
        "boxplot",
        "show",
        "style",
        "to_string",
        "to_markdown",
        "duplicated",
        "select_dtypes",
        "nlargest",
        "nsmallest",
        "describe_option",
        "get_params",
        "mode",
        "skew",
        "kurt",
        "idxmax",
        "idxmin",
        "any",
        "all",
        "reset_index",
        "pivot_table",
        "crosstab",
        "query",
        "filter",
        "loc",
        "iloc",
        "transpose",
        "T",
        "items",
        "keys",
        "values",
        "shape",
        "dtypes",
        "columns",
        "unstack",
        "stack",
        "rename",
        "astype",
        "apply",
        "map",
        "cumsum",
        "diff",
        "pct_change",
        "background_gradient",
        "format",
        "summary",
        "bar",
        "barh",
        "scatter",
        "line",
        "pie",
        "legend",
        "set_title",
        "set_xlabel",
        "set_ylabel",
        "set_xlim",
        "set_ylim",
        "tight_layout",
        "savefig",
        "grid",
        "axhline",
        "axvline",
        "annotate",
        "text",
        "imshow",
        "colorbar",
    }
)
# Module functions that return a value and change nothing (their unused result is shown).
_PURE_MODULES = ("pandas.", "numpy.")
_IMPURE_WORDS = ("seed", "save", "set_", "to_", "write", "load", "random.")


class DisplayTracker:
    """Classifies statements across a notebook, remembering names that hold figures."""

    def __init__(self, aliases: Aliases, value_functions: set[str]) -> None:
        self._aliases = aliases
        self._value_functions = value_functions  # notebook functions that return a value
        self.figure_names: set[str] = set()

    def is_display(self, statement: ast.stmt) -> bool:
        if isinstance(statement, ast.Expr):
            return self._shows(statement.value)
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            value = statement.value
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if all(self._is_into_figure(target) for target in targets):
                return True  # `run["accuracy"] = acc`, `ax.title = ...`: into what only shows
            if value is not None and (
                self._is_plotting_call(value) or self._is_tracker_call(value)
            ):
                for target in (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                ):
                    self.figure_names.update(
                        n.id for n in ast.walk(target) if isinstance(n, ast.Name)
                    )
                return True
            return False
        if isinstance(statement, ast.For | ast.With | ast.If):
            body = [*statement.body, *getattr(statement, "orelse", [])]
            return bool(body) and all(self.is_display(inner) for inner in body)
        return isinstance(statement, ast.Pass)

    def _shows(self, value: ast.expr) -> bool:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return True  # a bare string: a comment that a notebook echoes
        if isinstance(value, ast.Await | ast.Yield | ast.YieldFrom):
            return False
        if not isinstance(value, ast.Call):
            return not any(isinstance(node, ast.Call) for node in ast.walk(value)) or all(
                self._shows(node) for node in ast.walk(value) if isinstance(node, ast.Call)
            )
        if keyword(value, "inplace") is not None:
            return False
        if self._is_plotting_call(value) or self._is_tracker_call(value):
            return True
        callee = dotted_name(value.func)
        qualified = self._aliases.resolve(callee) if callee else None
        if qualified in _DISPLAY_FUNCTIONS or qualified in self._value_functions:
            return True
        if qualified and qualified.startswith(_PURE_MODULES):
            return not any(word in qualified for word in _IMPURE_WORDS)
        root = root_name(value)
        methods = method_chain(value)
        if root is None or self._aliases.is_module_alias(root) or not methods:
            return False
        return all(method in _QUERY_METHODS for method in methods[-1:])

    def _is_tracker_call(self, value: ast.expr) -> bool:
        """A call into an experiment tracker (``wandb.log(...)``, ``neptune.init_run(...)``):
        it sends, it computes nothing the package needs. Reading one (``wandb.config``) is
        not a call, and stays for trackers.py to refuse."""
        if not isinstance(value, ast.Call):
            return False
        callee = dotted_name(value.func)
        return bool(callee) and self._aliases.resolve(callee).split(".")[0] in TRACKER_MODULES

    def _is_into_figure(self, target: ast.expr) -> bool:
        """An item or attribute of a name that holds a figure or a tracker's run."""
        if not isinstance(target, ast.Subscript | ast.Attribute):
            return False
        root = root_name(target)
        return root is not None and root in self.figure_names

    def _is_plotting_call(self, value: ast.expr) -> bool:
        root = root_name(value)
        if root is None:
            return False
        if root in self.figure_names:
            return True
        dotted = dotted_name(value.func) if isinstance(value, ast.Call) else dotted_name(value)
        qualified = self._aliases.resolve(dotted or root)
        if qualified.startswith(_SKLEARN_DISPLAYS) and "Display" in qualified:
            return True
        if qualified.startswith(_DATA_IN_PLOTTING_MODULES):
            return False  # a plotting library's own datasets: loading data
        return any(
            qualified == module or qualified.startswith(module + ".") for module in PLOTTING_MODULES
        )
