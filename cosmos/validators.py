"""Validators shared by the definition models of every app."""

from urllib.parse import urlsplit

from django.core.validators import RegexValidator

# Lower-case slugs keep ids usable in URLs, A2A card paths and websocket routes alike.
slug_id_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$",
    "Use 1-64 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit.",
    code="invalid_slug",
)


def base_url_problem(url: str) -> str | None:
    """Why a model API's base URL is refused, or None (empty is fine: the provider's own address).

    Not Django's URLValidator: it refuses hosts without a dot other than localhost, such as a
    container named ``ollama``.
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An http:// or https:// URL with a host, e.g. http://localhost:11434/v1."
    if parts.username or parts.password:
        return "No credentials in the URL: put the key in an environment variable and reference it as the API key."
    if parts.query or parts.fragment:
        return "No ?query or #fragment: the API's base URL only."
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number or out of range
    except ValueError:
        return "The port must be a number from 1 to 65535."
    from .outbound import defined_address_problem

    return defined_address_problem(url)
