"""verify_webhook against signatures made the way the notifier makes them (pure, no server)."""

import base64
import hashlib
import hmac
import unittest

from rebeca_client import WebhookVerificationError, verify_webhook

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
BODY = '{"type":"job.succeeded","data":{"job_id":"job_1"}}'


def sign(secret: str, msg_id: str, ts: int, body: str) -> str:
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(signature: str, ts: int = 1_000_000) -> dict:
    return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}


class VerifyWebhookTest(unittest.TestCase):
    def test_accepts_a_valid_signature_and_returns_the_body(self):
        got = verify_webhook(SECRET, headers(sign(SECRET, "msg_1", 1_000_000, BODY)), BODY, now=1_000_010)
        self.assertEqual(got["data"]["job_id"], "job_1")

    def test_accepts_any_of_several_signatures_during_rotation(self):
        both = sign(OLD, "msg_1", 1_000_000, BODY) + " " + sign(SECRET, "msg_1", 1_000_000, BODY)
        self.assertEqual(verify_webhook([SECRET], headers(both), BODY.encode(), now=1_000_000)["type"], "job.succeeded")

    def test_rejects_a_tampered_body_or_another_secret(self):
        signature = sign(SECRET, "msg_1", 1_000_000, BODY)
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(SECRET, headers(signature), BODY.replace("job_1", "job_2"), now=1_000_000)
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(OLD, headers(signature), BODY, now=1_000_000)

    def test_rejects_a_timestamp_outside_the_window(self):
        signature = sign(SECRET, "msg_1", 1_000_000, BODY)
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(SECRET, headers(signature), BODY, now=1_000_000 + 301)

    def test_rejects_missing_headers(self):
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(SECRET, {}, BODY)


if __name__ == "__main__":
    unittest.main()
