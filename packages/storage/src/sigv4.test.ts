import { describe, expect, it } from "vitest";
import { amzDate, createSigV4Signer, encodeS3Path, sha256Hex } from "./sigv4.js";

// The worked examples of AWS's "Signature Calculations for the Authorization Header" (S3 API
// reference): the same credentials, date and requests must give the signatures printed there.
const creds = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const at = new Date("2013-05-24T00:00:00Z");

describe("SigV4 signing", () => {
  it("signs AWS's GET object example to its documented signature", () => {
    const headers = createSigV4Signer("us-east-1")(
      { method: "GET", path: "/test.txt", headers: { host: "examplebucket.s3.amazonaws.com", range: "bytes=0-9" }, payloadHash: sha256Hex("") },
      creds,
      at,
    );
    expect(headers.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    expect(headers["x-amz-date"]).toBe("20130524T000000Z");
  });

  it("signs AWS's PUT object example (a key with `$`, extra amz header) to its documented signature", () => {
    const body = "Welcome to Amazon S3.";
    expect(sha256Hex(body)).toBe("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const headers = createSigV4Signer("us-east-1")(
      {
        method: "PUT",
        path: encodeS3Path("/test$file.text"),
        headers: { host: "examplebucket.s3.amazonaws.com", date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" },
        payloadHash: sha256Hex(body),
      },
      creds,
      at,
    );
    expect(headers.authorization).toMatch(/Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd$/);
  });

  it("signs temporary credentials' session token, and a new day with a new key", () => {
    const sign = createSigV4Signer("eu-west-1");
    const req = { method: "PUT", path: "/b/k", headers: { host: "h" }, payloadHash: "UNSIGNED-PAYLOAD" };
    const withToken = sign(req, { ...creds, sessionToken: "tok" }, at);
    expect(withToken["x-amz-security-token"]).toBe("tok");
    expect(withToken.authorization).toContain("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,");
    const today = sign(req, creds, at).authorization;
    const tomorrow = sign(req, creds, new Date("2013-05-25T00:00:00Z")).authorization;
    expect(tomorrow).toContain("/20130525/eu-west-1/s3/aws4_request");
    expect(tomorrow.slice(-64)).not.toBe(today.slice(-64));
    // The cached key of the day after must not leak back into the first day's signature.
    expect(sign(req, creds, at).authorization).toBe(today);
  });
});

describe("encodeS3Path", () => {
  it("keeps unreserved characters and slashes, percent-encodes everything else (UTF-8)", () => {
    expect(encodeS3Path("/b/tenants/t-1/jobs/a_b.c~d/0.png")).toBe("/b/tenants/t-1/jobs/a_b.c~d/0.png");
    expect(encodeS3Path("/b/a b+c!'()*=&é")).toBe("/b/a%20b%2Bc%21%27%28%29%2A%3D%26%C3%A9");
  });
  it("formats SigV4 dates without separators or milliseconds", () => {
    expect(amzDate(new Date("2026-12-03T00:01:02.345Z"))).toBe("20261203T000102Z");
  });
});
