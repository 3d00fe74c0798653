"""``ASTEROS_A2A_DEFAULT``: the resource the domain-root A2A card describes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from asteros_site.options import load_options

BASE = {"SECRET_KEY": "not-a-real-secret"}


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("chat-agent", "chat-agent"),
        (" agent:chat-agent ", "agent:chat-agent"),
        ("star:team", "star:team"),
        ("workflow:pipeline.v2", "workflow:pipeline.v2"),
    ],
)
def test_accepted_values(raw, read):
    env = BASE if raw is None else BASE | {"ASTEROS_A2A_DEFAULT": raw}
    assert load_options(env).a2a_default == read


@pytest.mark.parametrize("raw", ["team:x", "agent:", ":x", "agent:with space", "-leading", "a" * 65, "star:a/b"])
def test_refused_values_name_the_variable_and_what_it_takes(raw):
    with pytest.raises(ImproperlyConfigured) as refused:
        load_options(BASE | {"ASTEROS_A2A_DEFAULT": raw})
    assert "ASTEROS_A2A_DEFAULT" in str(refused.value) and "star:<id>" in str(refused.value)
