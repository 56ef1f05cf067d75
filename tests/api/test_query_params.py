"""Parameter filters from query strings: `name=value` and `name=low..high`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api.query_params import _FILTER, parse_param_filters
from service.core.errors import InvalidSpec
from service.core.repo.runs import ParamFilter


def test_values_and_ranges() -> None:
    assert parse_param_filters(None) == []
    assert parse_param_filters(["batch_size=32", "optimizer=adam", "nesterov=true"]) == [
        ParamFilter("batch_size", equals=32.0),
        ParamFilter("optimizer", equals="adam"),
        ParamFilter("nesterov", equals=True),
    ]
    assert parse_param_filters(["learning_rate=1e-4..1e-2", "beta_1=0.9..", "beta_2=..0.999"]) == [
        ParamFilter("learning_rate", low=1e-4, high=1e-2),
        ParamFilter("beta_1", low=0.9),
        ParamFilter("beta_2", high=0.999),
    ]


@pytest.mark.parametrize("bad", ["batch_size", "=3", "Batch=3", "lr=", "lr=a..b", "x" * 65 + "=1"])
def test_malformed_filters_say_what_is_expected(bad: str) -> None:
    with pytest.raises(InvalidSpec, match="param"):
        parse_param_filters([bad])


@settings(max_examples=300, deadline=None)
@given(st.from_regex(_FILTER))
def test_every_filter_the_pattern_allows_is_parsed(text: str) -> None:
    """The OpenAPI pattern of `param=` promises nothing the parser refuses (schemathesis found
    `x=+7....88`, which an earlier pattern allowed and the parser split at the first `..`)."""
    assert len(parse_param_filters([text])) == 1
