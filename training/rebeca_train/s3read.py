"""Streaming reads from S3 (or any S3-compatible store) with the standard library: a SigV4-signed
GET whose body is read line by line, so an interactions file of any size never sits in memory.
Credentials and endpoint from the usual variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN (optional), S3_ENDPOINT (empty = AWS), S3_REGION."""
import datetime
import hashlib
import hmac
import io
import os
import urllib.parse
import urllib.request

from .common import InputError


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_get(bucket, key, env=os.environ):
    """A urllib Request for GET s3://bucket/key, path-style, signed with SigV4 (payload unsigned)."""
    access, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access or not secret:
        raise InputError("reading from S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    region = env.get("S3_REGION", "us-east-1")
    endpoint = (env.get("S3_ENDPOINT") or f"https://s3.{region}.amazonaws.com").rstrip("/")
    parsed = urllib.parse.urlparse(endpoint)
    path = "/" + urllib.parse.quote(bucket, safe="") + "/" + urllib.parse.quote(key, safe="/~")
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": parsed.netloc, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date}
    if env.get("AWS_SESSION_TOKEN"):
        headers["x-amz-security-token"] = env["AWS_SESSION_TOKEN"]
    names = sorted(headers)
    canonical = "\n".join(["GET", path, "", "".join(f"{h}:{headers[h]}\n" for h in names), ";".join(names), "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _sign(_sign(_sign(_sign(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={';'.join(names)}, "
                                f"Signature={signature}")
    return urllib.request.Request(endpoint + path, headers={k: v for k, v in headers.items() if k != "host"})


def open_text(uri):
    """A text stream of a local path or an s3:// URI (read as it arrives)."""
    if not uri.startswith("s3://"):
        if not os.path.exists(uri):
            raise InputError(f"interactions file not found: {uri}")
        return open(uri, newline="", encoding="utf-8")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise InputError(f"{uri}: expected s3://bucket/key")
    try:
        resp = urllib.request.urlopen(signed_get(bucket, key), timeout=60)
    except urllib.error.HTTPError as e:
        raise InputError(f"{uri}: S3 answered {e.code} {e.reason}")
    return io.TextIOWrapper(resp, encoding="utf-8", newline="")
