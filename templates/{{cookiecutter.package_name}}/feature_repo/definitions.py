{%- if cookiecutter._code.feature_store -%}
{%- set store = cookiecutter._code.feature_store -%}
# {{ cookiecutter._code.header }}
"""The features of {{ cookiecutter.package_name }} as Feast definitions.

`python -m {{ cookiecutter.package_name }}.features apply` registers them (as `feast apply` in
this folder does), refusing any feature view whose tags lack `implementation_status` or
`validation_method`: the service refuses to start on such a view too, and `nb2prod lint` fails
on it (NBH109). The views' features are read from the Parquet file training writes, so a
feature the notebook adds needs no edit here.
"""

from feast import Entity, FeatureService, FeatureView, FileSource, ValueType

{{ store.entity.name }} = Entity(
    name="{{ store.entity.name }}",
    join_keys=["{{ store.entity.join_key }}"],
    value_type=ValueType.INT64,  # training refuses keys of another type, naming this line
    description={{ store.entity.description_literal }},
)

{{ store.view.name }}_source = FileSource(
    name="{{ store.view.name }}_source",
    path="data/{{ store.view.name }}.parquet",
    timestamp_field="event_timestamp",
    description={{ store.view.origin_literal }},
)

{{ store.view.name }} = FeatureView(
    name="{{ store.view.name }}",
    entities=[{{ store.entity.name }}],
    source={{ store.view.name }}_source,
    description={{ store.view.description_literal }},
    tags={
        "implementation_status": {{ store.view.implementation_status_literal }},
        "validation_method": {{ store.view.validation_method_literal }},
        "cells": "{{ store.view.cells | join(', ') }}",
        "reason": {{ store.view.reason_literal }},
    },
)

{{ store.service }} = FeatureService(
    name="{{ store.service }}",
    features=[{{ store.view.name }}],
    description="The features the model {{ cookiecutter.package_name }} reads.",
)
{%- endif %}
