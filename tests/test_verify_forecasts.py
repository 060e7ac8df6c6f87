"""`nb2prod verify` on statsmodels results: forecasters are compared over a stretch of their
series and formula models on rows, through a real kernel and a real MLflow store (apart from
test_verify.py so the two files run on two workers)."""

from __future__ import annotations

import pytest
from test_verify import converted, nb2prod

SERIES = [
    "import numpy as np\nimport pandas as pd\nfrom statsmodels.tsa.arima.model import ARIMA\n"
    "from statsmodels.tsa.forecasting.stl import STLForecast",
    "rng = np.random.default_rng(0)\n"
    "index = pd.date_range('2000-01-01', periods=120, freq='MS')\n"
    "series = pd.Series(np.cumsum(rng.normal(size=120)) + 50, index=index)\n"
    "X = pd.DataFrame({'promo': rng.normal(size=120)}, index=index)",
]


@pytest.mark.parametrize(
    ("fit", "stretch"),
    [
        # no exogenous data: the last fitted steps and as many forecast after them
        ("res = ARIMA(series, order=(2, 0, 1)).fit()", "positions 110 to 129"),
        (
            "res = STLForecast(series, ARIMA, model_kwargs={'order': (1, 1, 0)}).fit()\n"
            "print(res.forecast(6))",
            "positions 110 to 129",
        ),
        # with it, the future is unknown to verify: the last fitted steps only
        ("res = ARIMA(series, exog=X, order=(1, 0, 0)).fit()", "positions 100 to 119"),
    ],
    ids=["arima", "stl-forecast", "exog"],
)
def test_a_forecaster_is_compared_over_a_stretch_of_its_series(
    write_notebook, tmp_path, fit: str, stretch: str
) -> None:
    """A forecaster answers stretches of its series, not rows: the notebook's results and the
    package's served model forecast the same positions, asked as the service is asked."""
    notebook, package = converted(write_notebook, tmp_path, [*SERIES, fit])
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert f"forecast: the same at all 20 steps ({stretch} of the series)" in done.stdout
    assert "parity: every prediction agrees" in done.stdout


# A sample drawn only to be plotted, then the series a forecaster is fitted on, both from
# numpy's seeded global generator.
SHOWN_SAMPLE = [
    "import numpy as np\nimport matplotlib.pyplot as plt\n"
    "from statsmodels.tsa.arima.model import ARIMA\n"
    "from statsmodels.tsa.arima_process import ArmaProcess",
    "np.random.seed(0)\nprocess = ArmaProcess(np.array([1, -0.5]), np.array([1]))",
    "plt.plot(process.generate_sample(nsample=50))",
    "series = process.generate_sample(nsample=200)",
    "res = ARIMA(series, order=(1, 0, 0)).fit()",
]


def test_a_dropped_cell_seen_drawing_from_the_seeded_stream_is_named_as_the_cause(
    write_notebook, tmp_path
) -> None:
    """A plot of a sample draws from numpy's seeded global stream through a name the notebook
    gives a library method, which no static rule follows (the method called by its own name is
    known, and its draw kept); the notebook's run shows it, and verify names that cell."""
    cells = [*SHOWN_SAMPLE]
    cells[1] += "\nmake_sample = process.generate_sample"
    cells[2] = "plt.plot(make_sample(nsample=50))"
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 1, done.stdout + done.stderr
    assert "forecast: 20 of 20 steps differ" in done.stdout
    assert (
        "cause: dropped-random-draw (cell 3): the notebook's run shows this cell, which the "
        "package leaves out, drawing from numpy's global random generator" in done.stdout
    )


def test_a_shown_draw_through_a_library_method_is_kept_and_the_forecast_agrees(
    write_notebook, tmp_path
) -> None:
    """statsmodels' `generate_sample` draws from numpy's global generator (its installed source
    says so): the package draws the plotted sample too, without the plot, so the series it
    fits is the notebook's (20 of 20 steps differed)."""
    notebook, package = converted(write_notebook, tmp_path, SHOWN_SAMPLE)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "forecast: the same at all 20 steps" in done.stdout


def test_a_formula_model_fitted_on_columns_given_as_a_dict_is_compared_on_rows(
    write_notebook, tmp_path
) -> None:
    cells = [
        "import numpy as np\nimport statsmodels.formula.api as smf",
        "rng = np.random.default_rng(0)\nx = rng.normal(size=60)\ny = 2 * x + rng.normal(size=60)",
        "data = {'x': x, 'y': y}\nres = smf.ols('y ~ x + np.sin(x)', data=data).fit()",
    ]
    notebook, package = converted(write_notebook, tmp_path, cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 0, done.stdout + done.stderr
    assert "predictions: the same on all 20 rows" in done.stdout
    assert "WARNING" not in done.stderr  # MLflow drops the target column without a word


def test_a_forecaster_fitted_on_other_data_than_the_notebooks_is_a_mismatch(
    write_notebook, tmp_path
) -> None:
    cells = [*SERIES, "res = ARIMA(series, order=(1, 0, 0)).fit()"]
    cells.insert(2, {"source": "series = series.diff().dropna()", "tags": ["skip"]})
    notebook = write_notebook(cells)
    package = tmp_path / "pkg"
    assert nb2prod("convert", notebook, "-o", package).code == 0
    cells[2] = "series = series.diff().dropna()"  # the notebook as run: the cell counts
    write_notebook(cells)
    done = nb2prod("verify", notebook, package)
    assert done.code == 1, done.stdout + done.stderr
    assert "forecast: 20 of 20 steps differ" in done.stdout
    assert "parity: NOT verified" in done.stdout
