"""A small typed Python client for Rebeca's gRPC API (JobService, BatchService).

The messages and stubs are generated from proto/ by ``generate.sh`` into the ``rebeca`` package;
this module wraps the calls most users make: create a job, wait for it, run a batch of user ids
from a file, and verify a Standard Webhooks callback.
"""

from .client import JobFailed, RebecaClient, Tls
from .webhooks import WebhookVerificationError, verify_webhook

__all__ = ["JobFailed", "RebecaClient", "Tls", "WebhookVerificationError", "verify_webhook"]
