"""Typed wrapper over the generated JobService and BatchService stubs."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import grpc

from rebeca.v1 import batches_pb2, batches_pb2_grpc, jobs_pb2, jobs_pb2_grpc

Job = jobs_pb2.Job
Batch = batches_pb2.Batch

_TERMINAL_JOB = {jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}
_TERMINAL_BATCH = {batches_pb2.BATCH_STATE_COMPLETED, batches_pb2.BATCH_STATE_CANCELLED, batches_pb2.BATCH_STATE_FAILED}
_CHUNK = 10_000


@dataclass(frozen=True)
class Tls:
    """TLS to the gateway: PEM bytes. No ``ca`` = the system's roots; ``cert`` + ``key`` = mutual TLS."""

    ca: Optional[bytes] = None
    cert: Optional[bytes] = None
    key: Optional[bytes] = None

    @classmethod
    def from_files(cls, ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None) -> "Tls":
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both its cert and its key file")
        read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
        return cls(ca=read(ca), cert=read(cert), key=read(key))


class JobFailed(Exception):
    """A waited-for job ended FAILED or CANCELLED; ``job`` holds it (``job.error.code``)."""

    def __init__(self, job: Job):
        super().__init__(f"job {job.job_id} ended {jobs_pb2.JobState.Name(job.state)}: {job.error.code} {job.error.message}")
        self.job = job


class RebecaClient:
    """A JobService + BatchService client bound to one API key.

    Errors are ``grpc.RpcError`` with the gateway's status codes (docs/api.md, "Errors"):
    retry only UNAVAILABLE, with the same request id.
    """

    def __init__(self, address: str, api_key: str, *, tls: Optional[Tls] = None, timeout: float = 30.0):
        if tls is None:
            self._channel = grpc.insecure_channel(address)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
            self._channel = grpc.secure_channel(address, creds)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = timeout
        self.jobs = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.batches = batches_pb2_grpc.BatchServiceStub(self._channel)

    def __enter__(self) -> "RebecaClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def create_job(
        self,
        user_id: str,
        num_images: int = 1,
        *,
        request_id: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        seed: Optional[int] = None,
        guidance: Optional[float] = None,
        steps: Optional[int] = None,
        model_version: str = "",
        callback_url: str = "",
        callback_events: Sequence[str] = (),
    ) -> jobs_pb2.CreateJobResponse:
        """Queues a job. A repeat with the same ``request_id`` returns the first job (``deduplicated``)."""
        request = jobs_pb2.CreateJobRequest(
            request_id=request_id or str(uuid.uuid4()),
            user_id=user_id,
            num_images=num_images,
            labels=dict(labels or {}),
            model_version=model_version,
            callback_url=callback_url,
            callback_events=list(callback_events),
        )
        if seed is not None:
            request.seed = seed
        if guidance is not None:
            request.guidance = guidance
        if steps is not None:
            request.steps = steps
        return self.jobs.CreateJob(request, metadata=self._metadata, timeout=self._timeout)

    def get_job(self, job_id: str) -> Job:
        return self.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=self._metadata, timeout=self._timeout).job

    def wait(self, job_id: str, timeout: float = 300.0) -> Job:
        """Follows the job's events until it is terminal; returns it SUCCEEDED or raises JobFailed."""
        job = self.get_job(job_id)
        if job.state not in _TERMINAL_JOB:
            stream = self.jobs.WatchEvents(
                jobs_pb2.WatchEventsRequest(job_id=job_id, after_event_id="0"), metadata=self._metadata, timeout=timeout
            )
            try:
                for response in stream:
                    if response.event.state in _TERMINAL_JOB:
                        break
            finally:
                stream.cancel()
            job = self.get_job(job_id)
        if job.state != jobs_pb2.JOB_STATE_SUCCEEDED:
            raise JobFailed(job)
        return job

    def create_batch_from_file(
        self,
        path: str,
        *,
        request_id: str,
        num_images: int = 1,
        labels: Optional[Mapping[str, str]] = None,
        seed: Optional[int] = None,
        callback_url: str = "",
        callback_events: Sequence[str] = (),
    ) -> Batch:
        """Streams the user ids of a file (one per line) as one batch; a retry with the same ``request_id`` is safe."""
        parameters = batches_pb2.BatchParameters(
            request_id=request_id,
            num_images=num_images,
            labels=dict(labels or {}),
            callback_url=callback_url,
            callback_events=list(callback_events),
        )
        if seed is not None:
            parameters.seed = seed
        requests = _batch_requests(parameters, Path(path))
        return self.batches.CreateBatch(requests, metadata=self._metadata, timeout=self._timeout * 10).batch

    def get_batch(self, batch_id: str) -> Batch:
        return self.batches.GetBatch(batches_pb2.GetBatchRequest(batch_id=batch_id), metadata=self._metadata, timeout=self._timeout).batch

    def wait_batch(self, batch_id: str, timeout: float = 3600.0, poll: float = 1.0) -> Batch:
        """Polls GetBatch until the batch is finished and its result manifest is written."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if batch.state in _TERMINAL_BATCH and batch.end_time:
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} is {batches_pb2.BatchState.Name(batch.state)} after {timeout}s")
            time.sleep(poll)


def _batch_requests(parameters: batches_pb2.BatchParameters, path: Path) -> Iterator[batches_pb2.CreateBatchRequest]:
    """The parameters, then the file's ids in chunks; the last chunk (maybe empty) says ``last``."""
    yield batches_pb2.CreateBatchRequest(parameters=parameters)
    offset, chunk = 0, []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            user_id = line.strip()
            if not user_id:
                continue
            chunk.append(user_id)
            if len(chunk) == _CHUNK:
                yield batches_pb2.CreateBatchRequest(users=batches_pb2.UserChunk(offset=offset, user_ids=chunk))
                offset, chunk = offset + len(chunk), []
    yield batches_pb2.CreateBatchRequest(users=batches_pb2.UserChunk(offset=offset, user_ids=chunk, last=True))
