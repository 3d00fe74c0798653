"""Validators shared by the definition models of every app."""

from django.core.validators import RegexValidator

# Lower-case slugs keep ids usable in URLs, A2A card paths and websocket routes alike.
slug_id_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$",
    "Use 1-64 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit.",
    code="invalid_slug",
)
