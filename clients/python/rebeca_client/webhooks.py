"""Standard Webhooks verification of Rebeca's callbacks (docs/api.md, "Events and callbacks")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Sequence, Union


class WebhookVerificationError(Exception):
    """The callback is not signed by any of the secrets, or its timestamp is outside the window."""


def _key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("webhook secret must start with whsec_")
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def verify_webhook(
    secrets: Union[str, Sequence[str]],
    headers: Mapping[str, str],
    body: Union[bytes, str],
    *,
    tolerance_seconds: int = 300,
    now: Optional[float] = None,
) -> Any:
    """Checks ``webhook-signature`` against each secret (several during a rotation) and the
    ``webhook-timestamp`` window; returns the parsed JSON body, or raises WebhookVerificationError.
    Dedupe deliveries on ``headers["webhook-id"]``: it is the same on every retry."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError as err:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from err
    if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance window")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + raw
    offered = [s.split(",", 1)[1] for s in signatures.split(" ") if s.startswith("v1,")]
    for secret in [secrets] if isinstance(secrets, str) else secrets:
        expected = base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, o) for o in offered):
            return json.loads(raw)
    raise WebhookVerificationError("no signature matches")
