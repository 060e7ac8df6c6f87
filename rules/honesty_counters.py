"""NBH108: prediction metrics exported without the counters that watch honesty."""

from __future__ import annotations

import libcst as cst

from nb2prod.lint.rule import LintRule, RuleContext
from nb2prod.lint.syntax import string_value

_COUNTERS = ("prometheus_client.Counter", "prometheus_client.metrics.Counter")
_METRICS = (
    *_COUNTERS,
    "prometheus_client.Histogram",
    "prometheus_client.metrics.Histogram",
    "prometheus_client.Summary",
    "prometheus_client.metrics.Summary",
)
_HONESTY_COUNTERS = ("honesty_compliant_responses_total", "missing_honesty_labels_total")


class PredictionMetricsWithoutHonestyCounters(LintRule):
    """## What it does
    Finds a module that defines Prometheus prediction metrics (a `prometheus_client`
    `Counter`, `Histogram` or `Summary` whose name contains `prediction`) but not both
    honesty counters, `honesty_compliant_responses_total` and `missing_honesty_labels_total`.
    Names are read as Prometheus exposes them: `namespace=` and `subsystem=` are prefixed,
    and a Counter gets `_total` appended, so `Counter("honesty_compliant_responses", ...)`
    counts. The counters must be defined in the same module as the prediction metrics.

    ## Why is this bad?
    Without the two counters, nobody can see (or alert on) the share of responses that
    carried their honesty fields: a model version registered without its tags would serve
    unlabelled predictions for weeks, with every dashboard green.

    ## Example
    ```python
    PREDICTIONS = Counter("predictions_total", "Predictions served.")
    ```

    ## Use instead
    ```python
    PREDICTIONS = Counter("predictions_total", "Predictions served.")
    COMPLIANT = Counter(
        "honesty_compliant_responses_total", "Responses with every honesty field.",
        ["status_value"],
    )
    MISSING = Counter(
        "missing_honesty_labels_total", "Responses lacking an honesty field.", ["endpoint"]
    )
    ```
    """

    CODE = "NBH108"
    NAME = "metrics-without-honesty-counters"
    MESSAGE = "prediction metrics are defined without the honesty counters"
    TRIGGERS = ("prometheus_client",)
    VALID = (
        """
from prometheus_client import Counter, Histogram
PREDICTIONS = Counter("predictions_total", "Predictions served.")
LATENCY = Histogram("prediction_latency_seconds", "Prediction latency.")
COMPLIANT = Counter("honesty_compliant_responses_total", "Compliant.", ["status_value"])
MISSING = Counter("missing_honesty_labels_total", "Missing labels.", ["endpoint"])
""",
        """
import prometheus_client as pc
PREDICTIONS = pc.Counter("predictions", "Predictions served.")
COMPLIANT = pc.Counter("compliant_responses", "Compliant.", namespace="honesty")
MISSING = pc.Counter(name="missing_honesty_labels", documentation="Missing labels.")
""",
        """
from prometheus_client import Counter, Gauge
REQUESTS = Counter("http_requests_total", "Requests.")
MODEL = Gauge("model_info", "The model served.")
""",
    )
    INVALID = (
        """
from prometheus_client import Counter
PREDICTIONS = Counter("predictions_total", "Predictions served.")
""",
        """
import prometheus_client as pc
LATENCY = pc.Histogram("prediction_latency_seconds", "Prediction latency.")
COMPLIANT = pc.Counter("honesty_compliant_responses_total", "Compliant.")
""",
        """
from prometheus_client import Summary as S, Gauge
SIZE = S("prediction_batch_size", "Rows per request.")
MISSING = Gauge("missing_honesty_labels_total", "A gauge is not a counter.")
COMPLIANT = Gauge("honesty_compliant_responses_total", "Neither is this.")
""",
    )

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        self._prediction_metrics: list[cst.Call] = []
        self._counters: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        names = self.qualified_names(node.func)
        if not names & set(_METRICS):
            return
        name = _metric_name(node)
        if name is None:
            return
        if "prediction" in name:
            self._prediction_metrics.append(node)
        if names & set(_COUNTERS):
            self._counters.add(name if name.endswith("_total") else f"{name}_total")

    def leave_Module(self, original_node: cst.Module) -> None:
        missing = [name for name in _HONESTY_COUNTERS if name not in self._counters]
        if self._prediction_metrics and missing:
            self.report(
                self._prediction_metrics[0],
                f"prediction metrics are defined without the honesty counters "
                f"{', '.join(missing)}; define them here as Counters and increment them on "
                "every prediction response",
            )


def _metric_name(call: cst.Call) -> str | None:
    """The exposed name: namespace_subsystem_name, when all three are literals."""
    parts: dict[str, str | None] = {"namespace": "", "subsystem": "", "name": None}
    if call.args and call.args[0].keyword is None:
        parts["name"] = string_value(call.args[0].value)
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in parts:
            parts[arg.keyword.value] = string_value(arg.value)
    if any(value is None for value in parts.values()):
        return None
    return "_".join(value for value in parts.values() if value)
