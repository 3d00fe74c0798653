"""Standard Webhooks signatures (the ``standardwebhooks`` package): secrets and headers."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook as Signer

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes (what the spec's libraries read)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    """The three headers of a signed message. The timestamp is the attempt's: every retry is
    signed anew, with the same ``webhook-id``."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, sent_at, body),
    }
