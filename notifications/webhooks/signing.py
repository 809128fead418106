"""Webhook secrets and signatures, as the Standard Webhooks specification describes them.

A subscription's secret is `whsec_` + base64 of 24 random bytes, shown once to the administrator who makes it.
HMAC needs the secret itself to sign, so it cannot be stored as a hash (the scheme allows "encrypted or hashed";
for symmetric signatures only encryption works): it is kept as a Fernet token (AES-128-CBC + HMAC-SHA256, the
`cryptography` package) under a key derived from the service's `secret_key`. Changing `secret_key` makes the
stored secrets unreadable: rotate each subscription's secret after it.

The signature headers come from the `standardwebhooks` package (the scheme's reference implementation), so what
we send is what every verifier of the scheme checks.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks.webhooks import Webhook

__all__ = ["InvalidToken", "decrypt_secret", "encrypt_secret", "new_secret", "signed_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret


def _fernet(service_key: str) -> Fernet:
    derived = hashlib.sha256(b"vuosikello webhook secrets\x00" + service_key.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def new_secret() -> str:
    """Return a new signing secret in the scheme's `whsec_<base64>` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def encrypt_secret(secret: str, service_key: str) -> str:
    """Return the secret encrypted for storage."""
    return _fernet(service_key).encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(token: str, service_key: str) -> str:
    """Return a stored secret; raises InvalidToken when the service key changed."""
    return _fernet(service_key).decrypt(token.encode("ascii")).decode("ascii")


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """Return the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of one delivery attempt."""
    signature = Webhook(secret).sign(message_id, at, body)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature,
            "content-type": "application/cloudevents+json; charset=utf-8"}
