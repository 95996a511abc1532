"""The client against a real gateway with workers (started by test/e2e/python-client.test.ts).

Environment: REBECA_ADDRESS, REBECA_API_KEY, REBECA_WEBHOOK_SECRET, REBECA_USER_IDS (comma-separated
ids the demo model knows).
"""

import os
import tempfile
import threading
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc

from rebeca.v1 import batches_pb2, jobs_pb2
from rebeca_client import JobFailed, RebecaClient, verify_webhook


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run this through test/e2e/python-client.test.ts, which starts the stack")
    return value


class Receiver:
    """A loopback HTTP endpoint recording every callback (headers, raw body)."""

    def __init__(self):
        self.received = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.arrived:
                    outer.received.append((dict(self.headers.items()), body))
                    outer.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float):
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} callbacks after {timeout}s")
            return list(self.received)


class GatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = RebecaClient(_env("REBECA_ADDRESS"), _env("REBECA_API_KEY"))
        cls.secret = _env("REBECA_WEBHOOK_SECRET")
        cls.users = _env("REBECA_USER_IDS").split(",")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_create_wait_and_verify_its_signed_callback(self):
        receiver = Receiver()
        try:
            created = self.client.create_job(self.users[0], 2, seed=7, labels={"via": "python"}, callback_url=receiver.url)
            self.assertFalse(created.deduplicated)
            job = self.client.wait(created.job.job_id, timeout=120)
            self.assertEqual(job.state, jobs_pb2.JOB_STATE_SUCCEEDED)
            self.assertEqual([o.index for o in job.outputs], [0, 1])
            self.assertTrue(all(o.uri.startswith("s3://") and len(o.sha256) == 64 for o in job.outputs))
            [(headers, body)] = receiver.wait_for(1, timeout=60)
            payload = verify_webhook(self.secret, headers, body)
            self.assertEqual(payload["type"], "job.succeeded")
            self.assertIn(created.job.job_id, body.decode())
        finally:
            receiver.server.shutdown()

    def test_a_repeated_request_id_returns_the_first_job(self):
        request_id = str(uuid.uuid4())
        first = self.client.create_job(self.users[1], 1, request_id=request_id)
        again = self.client.create_job(self.users[1], 1, request_id=request_id)
        self.assertTrue(again.deduplicated)
        self.assertEqual(again.job.job_id, first.job.job_id)

    def test_a_failed_job_raises_with_its_error_code(self):
        created = self.client.create_job("nobody-knows-this-user", 1)
        with self.assertRaises(JobFailed) as caught:
            self.client.wait(created.job.job_id, timeout=120)
        self.assertEqual(caught.exception.job.error.code, "UNKNOWN_USER")

    def test_bad_arguments_are_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.client.create_job(self.users[0], 99)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_batch_from_file(self):
        users = self.users[:5]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(users) + "\n\n")
        batch = self.client.create_batch_from_file(f.name, request_id=str(uuid.uuid4()), num_images=1)
        self.assertEqual(batch.received_users, len(users))
        done = self.client.wait_batch(batch.batch_id, timeout=180, poll=0.2)
        self.assertEqual(done.state, batches_pb2.BATCH_STATE_COMPLETED)
        self.assertEqual((done.counts.total, done.counts.succeeded), (5, 5))
        self.assertTrue(done.result_manifest_uri.startswith("s3://"))


if __name__ == "__main__":
    unittest.main()
