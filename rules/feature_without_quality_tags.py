"""NBH109: a feature definition that does not say how trustworthy the feature is."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import keyword

_STATUS = "implementation_status"
_VIEWS = (
    "feast.FeatureView",
    "feast.feature_view.FeatureView",
    "feast.BatchFeatureView",
    "feast.batch_feature_view.BatchFeatureView",
    "feast.StreamFeatureView",
    "feast.stream_feature_view.StreamFeatureView",
    "feast.OnDemandFeatureView",
    "feast.on_demand_feature_view.OnDemandFeatureView",
)
# Feast's decorators that make a view of the function below them (not exported by `feast`).
_VIEW_DECORATORS = (
    "feast.on_demand_feature_view.on_demand_feature_view",
    "feast.stream_feature_view.stream_feature_view",
    "feast.batch_feature_view.batch_feature_view",
)
_FIELDS = ("feast.Field", "feast.field.Field")


class FeatureWithoutQualityTags(LintRule):
    """## What it does
    Finds feature definitions that do not carry their quality tags, `implementation_status`
    and how the feature was validated (a key starting with `validation`: `validation`,
    `validation_method`):

    - a Feast `FeatureView` (or `BatchFeatureView`, `StreamFeatureView`,
      `OnDemandFeatureView`) whose `tags=` lacks them;
    - a function decorated with a Feast view decorator, `@on_demand_feature_view(...)`,
      `@stream_feature_view(...)` or `@batch_feature_view(...)`, whose `tags=` lacks them
      (or that has no `tags=`); the finding names the function;
    - a Feast `Field` whose `tags=` lacks them, unless it is declared in the `schema=` of a
      view (class or decorator) whose tags have them (directly, or through a variable): a
      field inherits its view's tags;
    - a function decorated with a `feature(...)` registry decorator (the generated
      packages' `@feature(...)`, which is not Feast's, or any other decorator named
      `feature`) without the keyword arguments `implementation_status=` and `validation=`
      (or `validation_method=`).

    Feast names are resolved however they are imported (`pydantic.Field` is not Feast's).
    Tags given as a variable bound to a dict literal are read; tags the linter cannot read
    (a call, a `**` unpacking in the dict or in the call's arguments) are trusted.

    ## Why is this bad?
    A model is only as honest as its inputs. A feature computed by an untested rule, feeding
    a model marked `IMPLEMENTED`, quietly makes the claim of the whole model untrue; the tags
    let reviewers and tools see which features stand on evidence.

    ## Example
    ```python
    @feature(cells=(4,))
    def ratio(frame): ...
    ```

    ## Use instead
    ```python
    @feature(
        implementation_status="IMPLEMENTED",
        validation="end to end, by the model's accuracy (holdout 20%)",
        cells=(4,),
    )
    def ratio(frame): ...
    ```
    """

    CODE = "NBH109"
    NAME = "feature-without-quality-tags"
    MESSAGE = "feature definition lacks its quality tags"
    # Not plain "feature": most ML code says "features", and a file no rule needs is not parsed.
    TRIGGERS = ("feast", "@feature", ".feature(", ".feature\n")
    VALID = (
        """
from features import feature
@feature(implementation_status="IMPLEMENTED", validation="holdout 20%", cells=(3,))
def ratio(frame):
    return frame.a / frame.b
""",
        """
from feast import FeatureView, Field
from feast.types import Float32
TAGS = {"implementation_status": "HEURISTIC", "validation": "NONE - not validated"}
view = FeatureView(
    name="driver_stats",
    schema=[Field(name="trips", dtype=Float32)],
    tags=TAGS,
)
""",
        """
import feast as fs
from pydantic import Field
trips = fs.Field(
    name="trips",
    dtype=Float32,
    tags={"implementation_status": "IMPLEMENTED", "validation_method": "backtest 2024"},
)
class Request(BaseModel):
    x: float = Field(gt=0)
""",
        """
from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
TAGS = {"implementation_status": "HEURISTIC", "validation": "NONE - not validated"}
@on_demand_feature_view(
    schema=[Field(name="total", dtype=Float64)], sources=[spend], tags=TAGS
)
def total_spend(inputs):
    return inputs
""",
    )
    INVALID = (
        """
from features import feature
@feature(implementation_status="IMPLEMENTED", cells=(3,))
def ratio(frame):
    return frame.a / frame.b
""",
        """
import registry
@registry.feature()
def ratio(frame):
    return frame.a / frame.b
""",
        """
from feast import FeatureView as FV, Field as F
view = FV(
    name="driver_stats",
    schema=[F(name="trips", dtype=Float32)],
    tags={"team": "pricing"},
)
""",
        """
import feast
trips = feast.Field(name="trips", dtype=Float32, tags={"implementation_status": "HEURISTIC"})
view = feast.FeatureView(name="stats", schema=[trips], tags={"owner": "ml"})
""",
        """
from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view as odfv
@odfv(schema=[Field(name="total", dtype=Float64)], sources=[spend], tags={"team": "risk"})
def total_spend(inputs):
    return inputs
""",
        """
import feast.stream_feature_view
@feast.stream_feature_view.stream_feature_view(entities=[driver], source=trips, mode="spark")
def trip_rate(frame):
    return frame
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._dicts: dict[str, cst.BaseExpression] = {}
        self._fields: list[_Field] = []
        self._covered: set[cst.CSTNode] = set()  # Field calls inside a tagged view
        self._covered_names: set[str] = set()  # names of Fields listed by a tagged view
        self._binding: list[str | None] = [None]

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = [t.target for t in node.targets]
        name = targets[0].value if len(targets) == 1 and isinstance(targets[0], cst.Name) else None
        if name is not None and isinstance(node.value, cst.Dict):
            self._dicts[name] = node.value
        self._binding.append(name)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._binding.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for decorator in node.decorators:
            expression = decorator.decorator
            call = expression if isinstance(expression, cst.Call) else None
            func = call.func if call else expression
            if call and self.qualified_names(func) & set(_VIEW_DECORATORS):
                self._check_view_decorator(node, decorator, call)
                continue
            if _last_name(func) != "feature":
                continue
            keywords = {a.keyword.value for a in call.args if a.keyword} if call else set()
            if call and any(a.star == "**" for a in call.args):
                continue
            missing = [] if _STATUS in keywords else [f"{_STATUS}="]
            if not any(k.startswith("validation") for k in keywords):
                missing.append("validation=")
            if missing:
                self.report(
                    decorator,
                    f"feature {node.name.value}() is registered without "
                    f"{' and '.join(missing)}; say its status and how it was validated",
                )

    def visit_Call(self, node: cst.Call) -> None:
        names = self.qualified_names(node.func)
        if names & set(_VIEWS):
            missing = self._missing(node)
            if missing:
                self._report_call(node, "feature view", missing)
            else:
                self._cover(keyword(node, "schema"))
        elif names & set(_FIELDS):
            self._fields.append(_Field(node, self._binding[-1]))

    def _check_view_decorator(
        self, function: cst.FunctionDef, decorator: cst.Decorator, call: cst.Call
    ) -> None:
        """A Feast view made by decorating `function`: its tags=, like a view class's."""
        missing = self._missing(call)
        if missing:
            self.report(
                decorator,
                f"feature view {function.name.value}() is defined without "
                f"{' or '.join(missing)} in its tags=; tag it, e.g. "
                'tags={"implementation_status": "IMPLEMENTED", "validation": "holdout 20%"}',
            )
        else:
            self._cover(keyword(call, "schema"))

    def leave_Module(self, original_node: cst.Module) -> None:
        for field in self._fields:
            if field.call in self._covered or field.name in self._covered_names:
                continue
            missing = self._missing(field.call)
            if missing:
                self._report_call(field.call, "feature field", missing)

    def _missing(self, call: cst.Call) -> list[str]:
        """Quality tags a call's tags= lacks; none when it has them or cannot be read."""
        tags = keyword(call, "tags")
        if isinstance(tags, cst.Name):
            tags = self._dicts.get(tags.value, tags)
        if tags is None and any(arg.star == "**" for arg in call.args):
            return []  # tags= may be among the unpacked keyword arguments
        if tags is None:
            keys: set[str] = set()
        elif isinstance(tags, cst.Dict):
            if any(not isinstance(e, cst.DictElement) for e in tags.elements):
                return []
            keys = {
                e.key.evaluated_value
                for e in tags.elements
                if isinstance(e, cst.DictElement)
                and isinstance(e.key, cst.SimpleString)
                and isinstance(e.key.evaluated_value, str)
            }
        else:
            return []
        missing = [] if _STATUS in keys else [_STATUS]
        if not any(key.startswith("validation") for key in keys):
            missing.append("validation")
        return missing

    def _report_call(self, call: cst.Call, what: str, missing: list[str]) -> None:
        name = keyword(call, "name")
        if isinstance(name, cst.SimpleString) and isinstance(name.evaluated_value, str):
            what = f"{what} {name.evaluated_value}"  # the name a reader finds it by
        self.report(
            call,
            f"{what} has no {' or '.join(missing)} in its tags=; tag it, e.g. "
            'tags={"implementation_status": "IMPLEMENTED", "validation": "holdout 20%"}',
        )

    def _cover(self, schema: cst.BaseExpression | None) -> None:
        if isinstance(schema, cst.List | cst.Tuple):
            for element in schema.elements:
                if isinstance(element.value, cst.Call):
                    self._covered.add(element.value)
                elif isinstance(element.value, cst.Name):
                    self._covered_names.add(element.value.value)


@dataclass(frozen=True)
class _Field:
    call: cst.Call
    name: str | None  # the variable it is bound to, if any


def _last_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Name):
        return node.value
    return None
