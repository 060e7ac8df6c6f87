"""NBH105: a FastAPI route, or its response model, that can answer without the honesty fields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import keyword

_APPS = (
    "fastapi.FastAPI",
    "fastapi.applications.FastAPI",
    "fastapi.APIRouter",
    "fastapi.routing.APIRouter",
)
_VERBS = frozenset(("get", "post", "put", "patch", "delete", "options", "head", "api_route"))
# Routes that answer about the service, not with a prediction: their last path segment.
_EXEMPT = frozenset(
    (
        "health",
        "healthz",
        "ready",
        "readyz",
        "livez",
        "ping",
        "version",
        "metrics",
        "docs",
        "openapi.json",
    )
)
_JSON_RESPONSES = (
    "fastapi.responses.JSONResponse",
    "fastapi.responses.ORJSONResponse",
    "fastapi.responses.UJSONResponse",
    "starlette.responses.JSONResponse",
)
_RESPONSE_MODULES = ("fastapi.responses.", "starlette.responses.")
# Bases that add no fields of their own: a model deriving only from these declares them all.
_ROOTS = (
    "pydantic.BaseModel",
    "pydantic.main.BaseModel",
    "typing.TypedDict",
    "typing_extensions.TypedDict",
    "typing.Generic",
    "builtins.object",
)


class ResponseWithoutHonestyFields(LintRule):
    """## What it does
    Checks the routes of FastAPI apps and routers (`@app.post(...)`, `@router.get(...)` on
    an instance of `fastapi.FastAPI` or `fastapi.APIRouter`, however imported) against the
    contract's response fields (`implementation_status`, `accuracy_claim`,
    `validation_status` by default). It reports:

    - a response model that lacks a field: a class defined in the module and used as a
      `response_model=` anywhere, or as a route's return annotation (`-> PredictResponse`,
      `list[PredictResponse]`), counting the fields it inherits from classes of the module.
      This is reported once, on the class, where the fields go; a class deriving from
      something other than `pydantic.BaseModel`, `TypedDict` or a class of the module may
      inherit the fields, and is not judged;
    - a route that returns a dict literal or a `JSONResponse(content={...})` without the
      fields (an error response with a literal `status_code` of 400 or more is exempt: it
      carries no prediction);
    - a route with neither a `response_model=` nor a return annotation naming a model: one
      annotated `-> Response` (or any response class of FastAPI or Starlette) declares
      nothing about its body, so it is reported unless every `return` is a literal the rule
      can read (a dict, or a response built from one).

    Routes that report on the service rather than predict are exempt: those whose path ends
    in `/health`, `/healthz`, `/ready`, `/readyz`, `/livez`, `/ping`, `/version`,
    `/metrics`, `/docs` or `/openapi.json` (so `/v1/health` under a router prefix is exempt
    too).

    ## Why is this bad?
    The API response is where a prediction meets its user. Without the status, the claim and
    the validation status, a heuristic guess is indistinguishable from a validated model, and
    every client that acts on the number acts blind.

    ## Example
    ```python
    class Prediction(BaseModel):
        prediction: float

    @app.post("/predict", response_model=Prediction)
    def predict(features: Features) -> Prediction: ...
    ```

    ## Use instead
    ```python
    class Prediction(BaseModel):
        prediction: float
        implementation_status: str
        accuracy_claim: str
        validation_status: str
    ```
    """

    CODE = "NBH105"
    NAME = "response-without-honesty-fields"
    MESSAGE = "API response lacks the honesty fields"
    # An app or router made here (possibly under an alias), or a response model given: not
    # plain "fastapi", which most modules import for HTTPException alone.
    TRIGGERS = ("FastAPI(", "APIRouter(", "FastAPI as", "APIRouter as", "response_model")
    VALID = (
        """
from fastapi import FastAPI
from pydantic import BaseModel
app = FastAPI()
class Prediction(BaseModel):
    prediction: float
    implementation_status: str
    accuracy_claim: str
    validation_status: str
@app.post("/predict", response_model=Prediction)
def predict(x: float):
    return Prediction(prediction=x, **HONESTY)
@app.get("/health")
def health():
    return {"status": "ok"}
""",
        """
from fastapi import FastAPI as F
import pydantic
class Honest(pydantic.BaseModel):
    implementation_status: str
    accuracy_claim: str
    validation_status: str
class Prediction(Honest):
    prediction: float
def create_app() -> F:
    app = F()
    @app.post("/predict")
    def predict(x: float) -> Prediction:
        return Prediction(prediction=x, **HONESTY)
    return app
""",
        """
import fastapi
from fastapi.responses import JSONResponse
router = fastapi.APIRouter(prefix="/v1")
@router.get("/metrics")
def metrics():
    return JSONResponse({"requests": 3})
@router.post("/predict")
def predict(x: float) -> JSONResponse:
    if x < 0:
        return JSONResponse({"detail": "negative"}, status_code=422)
    return JSONResponse(content={
        "prediction": x,
        "implementation_status": "HEURISTIC",
        "accuracy_claim": "not measured",
        "validation_status": "UNVALIDATED",
    })
""",
        """
from fastapi import FastAPI
from schemas import Prediction
app = FastAPI()
@app.post("/predict", response_model=Prediction)
def predict(x: float):
    return {"prediction": x, **honesty_fields()}
""",
        """
from fastapi import FastAPI, Response
from pydantic import BaseModel
app = FastAPI()
class Prediction(BaseModel):
    prediction: float
    implementation_status: str
    accuracy_claim: str
    validation_status: str
@app.post("/predict", response_model=Prediction)
def predict(x: float) -> Response:
    return Response(render(x), media_type="application/json")
@app.get("/ping")
def ping() -> Response:
    return Response("\\n")
""",
    )
    INVALID = (
        """
from fastapi import FastAPI
from pydantic import BaseModel
app = FastAPI()
class Prediction(BaseModel):
    prediction: float
@app.post("/predict", response_model=Prediction)
def predict(x: float):
    return Prediction(prediction=x)
""",
        """
from fastapi import FastAPI as F
app = F()
@app.post("/predict")
def predict(x: float) -> dict:
    return {"prediction": x, "implementation_status": "HEURISTIC"}
""",
        """
import fastapi
from fastapi.responses import JSONResponse as J
router = fastapi.APIRouter()
@router.post("/score")
def score(x: float):
    return J(content={"score": x})
""",
        """
from fastapi import FastAPI
app = FastAPI()
@app.get("/predict")
def predict(x: float):
    return model.predict(x)
""",
        """
from fastapi import FastAPI
from typing import TypedDict
app = FastAPI()
class Prediction(TypedDict):
    prediction: float
    implementation_status: str
@app.post("/predict")
async def predict(x: float) -> list[Prediction]:
    return [Prediction(prediction=x, implementation_status="HEURISTIC")]
""",
        """
from fastapi import FastAPI
from fastapi.responses import Response
app = FastAPI()
@app.post("/predict")
def predict(x: float) -> Response:
    return Response(render(x), media_type="application/json")
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._required = context.contract.fields_where("response")
        self._apps: set[str] = set()
        self._classes: dict[str, _Class] = {}
        self._routes: list[_Route] = []
        self._functions: list[list[cst.Return]] = []
        self._models: list[cst.BaseExpression] = []  # every response_model= given

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and self.calls(node.value, *_APPS):
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self._apps.add(target.target.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        value, target = node.value, node.target
        if (
            isinstance(value, cst.Call)
            and isinstance(target, cst.Name)
            and self.calls(value, *_APPS)
        ):
            self._apps.add(target.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        fields = {
            statement.target.value
            for line in node.body.body
            if isinstance(line, cst.SimpleStatementLine)
            for statement in line.body
            if isinstance(statement, cst.AnnAssign) and isinstance(statement.target, cst.Name)
        }
        bases: list[str] = []  # classes of the module it derives from
        known = True
        for base in node.bases:
            expression = base.value
            if isinstance(expression, cst.Subscript):
                expression = expression.value
            if isinstance(expression, cst.Name) and expression.value in self._classes:
                bases.append(expression.value)
            elif not self.qualified_names(expression) & set(_ROOTS):
                known = False
        self._classes[node.name.value] = _Class(node, fields, bases, known)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append([])
        for decorator in node.decorators:
            call = decorator.decorator
            if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
                continue
            owner, verb = call.func.value, call.func.attr.value
            if isinstance(owner, cst.Name) and verb in _VERBS:
                self._routes.append(_Route(node, call, owner.value, self._functions[-1]))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._functions.append([])  # a lambda's body is not the route's return

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._functions.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if self._functions:
            self._functions[-1].append(node)

    def visit_Call(self, node: cst.Call) -> None:
        model = keyword(node, "response_model")
        if model is not None and not _exempt(node):
            self._models.append(model)

    def leave_Module(self, original_node: cst.Module) -> None:
        models = list(self._models)
        for route in self._routes:
            if route.owner not in self._apps or _exempt(route.decorator):
                continue
            declared = keyword(route.decorator, "response_model")
            annotation = route.function.returns
            response_class = annotation is not None and self._is_response(annotation.annotation)
            if declared is None and annotation is not None and not response_class:
                models.append(annotation.annotation)
            literal = [self._check_return(returned) for returned in route.returns]
            undeclared = declared is None or _is_none(declared)
            if undeclared and (annotation is None or (response_class and not all(literal))):
                what = "returns a bare response" if response_class else "has no response model"
                self.report(
                    route.decorator,
                    f"route {route.function.name.value}() {what}, so nothing makes it answer "
                    f"with {', '.join(self._required)}; declare response_model= a model with "
                    "those fields",
                )
        reported: set[str] = set()
        for model in models:
            for name in _names_in(model):
                if name in self._classes and name not in reported:
                    reported.add(name)
                    self._check_model(name)

    def _check_model(self, name: str) -> None:
        fields = self._fields(name, set())
        if fields is None:
            return
        missing = [f for f in self._required if f not in fields]
        if missing:
            self.report(
                self._classes[name].node.name,
                f"response model {name} lacks {', '.join(missing)}; add them as fields so "
                "every response states what the model honestly is",
            )

    def _fields(self, name: str, seen: set[str]) -> set[str] | None:
        """Fields declared by a class of the module and its bases; None when unknowable."""
        found = self._classes[name]
        if not found.known or name in seen:
            return None
        fields = set(found.fields)
        for base in found.bases:
            inherited = self._fields(base, seen | {name})
            if inherited is None:
                return None
            fields |= inherited
        return fields

    def _is_response(self, annotation: cst.BaseExpression) -> bool:
        """A response class of FastAPI or Starlette: it says nothing of the body's fields."""
        return any(
            name == "fastapi.Response" or name.startswith(_RESPONSE_MODULES)
            for name in self.qualified_names(annotation)
        )

    def _check_return(self, node: cst.Return) -> bool:
        """Reports a literal response without the fields; False when the body is unknowable."""
        value = node.value
        content: cst.BaseExpression | None = value
        if isinstance(value, cst.Call) and self.calls(value, *_JSON_RESPONSES):
            status = keyword(value, "status_code")
            if status is None and len(value.args) > 1 and value.args[1].keyword is None:
                status = value.args[1].value
            if isinstance(status, cst.Integer) and status.evaluated_value >= 400:
                return True
            content = keyword(value, "content")
            if content is None and value.args and value.args[0].keyword is None:
                content = value.args[0].value
        if not isinstance(content, cst.Dict):
            return False
        keys: set[str] = set()
        for element in content.elements:
            if not isinstance(element, cst.DictElement):
                return False  # `**fields` may carry them
            key = element.key
            if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str):
                keys.add(key.evaluated_value)
        missing = [f for f in self._required if f not in keys]
        if missing:
            self.report(
                content,
                f"route returns a response without {', '.join(missing)}; add them, with the "
                "values the model's registry tags give",
            )
        return True


@dataclass
class _Class:
    node: cst.ClassDef
    fields: set[str]
    bases: list[str]
    known: bool  # False when a base may carry fields this module cannot see


@dataclass
class _Route:
    function: cst.FunctionDef
    decorator: cst.Call
    owner: str
    returns: list[cst.Return] = field(default_factory=list)


def _exempt(call: cst.Call) -> bool:
    """A route (or `add_api_route`) whose literal path ends in a service endpoint."""
    path = keyword(call, "path")
    if path is None and call.args and call.args[0].keyword is None:
        path = call.args[0].value
    if not isinstance(path, cst.SimpleString) or not isinstance(path.evaluated_value, str):
        return False
    return path.evaluated_value.rstrip("/").rsplit("/", 1)[-1] in _EXEMPT


def _is_none(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _names_in(node: cst.CSTNode) -> Iterator[str]:
    """Class names an annotation mentions: `Model`, `list[Model]`, `Model | None`, `"Model"`."""
    if isinstance(node, cst.Name):
        yield node.value
    elif isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        if isinstance(text, str) and text.isidentifier():
            yield text
    elif not isinstance(node, cst.Attribute):  # `schemas.Model` is another module's class
        for child in node.children:
            yield from _names_in(child)
