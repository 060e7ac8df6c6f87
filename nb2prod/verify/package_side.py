"""What verify asks of the package's training process once `train` has returned.

The process that trained the package has MLflow, the model's library and the package imported
already; reading the run, predicting on the notebook's rows and recording the verdict there
spares verify's own process importing them all again (seconds of every verify). Requests come
one JSON line at a time on stdin; each answer is one line on stdout behind `REPLY`, so that it
cannot be taken for what training printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from typing import Any

REPLY = "\x1enb2prod-verify-reply "


def answer_requests(tracking_uri: str) -> None:
    """Answer verify until it closes stdin."""
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer: dict[str, Any] = _ANSWERS[request["op"]](tracking_uri, request)
        except Exception as error:  # said to verify, which says what it means for the user
            answer = {"error": f"{type(error).__name__}: {error}", "type": type(error).__name__}
        sys.stdout.write(f"\n{REPLY}{json.dumps(answer)}\n")
        sys.stdout.flush()


def _metrics(tracking_uri: str, request: dict[str, Any]) -> dict[str, Any]:
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri).get_run(request["run"])
    return {"metrics": dict(run.data.metrics)}


def _predictions(tracking_uri: str, request: dict[str, Any]) -> dict[str, Any]:
    """What the package's logged model answers for the rows the notebook's model predicted on
    (for a forecaster, the stretch it forecast, asked as MLflow's statsmodels flavour is asked:
    one row of start and end), loaded as the package's service loads it. The package is
    importable here: a model may hold its types (the notebook's helpers, a forecast through
    another model)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import get_model_info

    from nb2prod_runtime.loading import answering_model
    from nb2prod_runtime.model_io import ONE_COLUMN

    mlflow.set_tracking_uri(tracking_uri)
    # The notebook's rows may hold more than the model reads (a formula's target): MLflow
    # drops those columns, and its warning about them is not the user's to read here.
    logging.getLogger("mlflow.models.utils").setLevel(logging.ERROR)
    uri = f"models:/{request['name']}/{request['version']}"
    # what a model's library prints as it predicts (Keras's progress bar) is not verify's output
    with contextlib.redirect_stdout(io.StringIO()):
        if request.get("stretch") is not None:
            model = mlflow.pyfunc.load_model(uri)
            start, end = request["stretch"]
            rows = pd.DataFrame({"start": [start], "end": [end]})
        else:
            # as the service loads it: category columns given back as categories, a frame
            # taken as its columns' own types
            info = get_model_info(uri)
            model, _ = answering_model(uri, info)
            column = (info.metadata or {}).get(ONE_COLUMN)
            if request.get("frame") is not None:
                rows = rows_sent(request["frame"], request.get("exact") or [])
            elif column is not None:  # the values of the one column it was fitted on
                rows = pd.DataFrame({column: list(request["array"])})
            else:
                rows = _as_signature_tensor(info, np.asarray(request["array"]))
        answers = np.asarray(model.predict(rows))
    # one entry per row, as the notebook's side gives them (a row of class probabilities)
    flat = answers.reshape(len(answers), -1).tolist() if answers.ndim > 1 else answers.tolist()
    return {"predictions": flat}


def rows_sent(frame: str, exact: list[list[Any]]) -> Any:
    """The notebook's rows as its kernel sent them, the float columns to the bit (`exact`:
    position and the values as `float.hex`)."""
    import pandas as pd

    rows = pd.read_json(io.StringIO(frame), orient="split", dtype=False)
    for position, values in exact:
        rows.isetitem(position, [float.fromhex(value) for value in values])
    return rows


def _as_signature_tensor(info: Any, rows: Any) -> Any:
    """JSON rows come back as float64; a tensor signature (a PyTorch module's float32) takes
    its own dtype, as serving gives it."""
    inputs = info.signature.inputs if info.signature else None
    if inputs is not None and inputs.is_tensor_spec() and len(inputs.inputs) == 1:
        return rows.astype(inputs.inputs[0].type)
    return rows


def _record(tracking_uri: str, request: dict[str, Any]) -> dict[str, Any]:
    """The verdict on the run that trained the version: the promotion gate reads it there,
    and a reader of the run sees the seed both sides started from."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run_id = request["run"]
    for name, value in request["tags"].items():
        client.set_tag(run_id, name, value)
    for name, delta in request["deltas"].items():
        client.log_metric(run_id, f"parity_delta_{name}", delta)
    return {}


_ANSWERS = {"metrics": _metrics, "predict": _predictions, "record": _record}
