# {{ cookiecutter._code.header }}
# The team's MLflow tracking server for compose.yaml: the MLflow this package trains with, and
# PostgreSQL's driver. Its settings come from the environment compose.yaml gives it.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir \
{%- for requirement in cookiecutter._code.requirements.install if requirement.startswith("mlflow==") %}
        "{{ requirement }}" \
{%- endfor %}
        "psycopg[binary]==3.3.9"

RUN groupadd --gid 10001 mlflow \
    && useradd --uid 10001 --gid mlflow --create-home --shell /usr/sbin/nologin mlflow \
    && mkdir -p /var/lib/mlflow/artifacts \
    && chown -R 10001:10001 /var/lib/mlflow
USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000

CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
