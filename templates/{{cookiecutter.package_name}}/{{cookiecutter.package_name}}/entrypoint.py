# {{ cookiecutter._code.header }}
"""Start the service as the container does: ``python -m {{ cookiecutter.package_name }}.entrypoint [COMMAND...]``.

It empties ``PROMETHEUS_MULTIPROC_DIR`` (where each worker writes its metric values), then
replaces itself with COMMAND, by default uvicorn serving ``{{ cookiecutter.package_name }}.serve:app`` on ``PORT``
(8000) with ``WEB_CONCURRENCY`` workers; see nb2prod-runtime's ``entrypoint``.
"""

from nb2prod_runtime.compat import require_runtime

from {{ cookiecutter.package_name }} import RUNTIME_VERSION

if __name__ == "__main__":
    require_runtime(RUNTIME_VERSION, "serve")  # before the rest of the runtime is imported
    from nb2prod_runtime import entrypoint

    entrypoint.main("{{ cookiecutter.package_name }}.serve:app")
