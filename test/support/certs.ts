import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  /** PEM files: the CA, and a leaf (server or client) it signed. */
  caCert: string;
  issue(name: string, opts: { server: boolean }): { cert: string; key: string };
}

const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });

/**
 * A throwaway certificate authority made with openssl (P-256 keys, valid one day): server
 * certificates for 127.0.0.1 / localhost and client certificates, all signed by it.
 */
export function createTestPki(name: string, dir = mkdtempSync(join(tmpdir(), "rebeca-pki-"))): TestPki {
  const ca = (f: string) => join(dir, `${name}-ca.${f}`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", ca("key"), "-out", ca("pem"), "-days", "1", "-subj", `/CN=${name} test CA`], dir);
  return {
    dir,
    caCert: ca("pem"),
    issue(leaf, { server }) {
      const file = (f: string) => join(dir, `${name}-${leaf}.${f}`);
      openssl(["req", ...ec, "-keyout", file("key"), "-out", file("csr"), "-subj", `/CN=${leaf}`], dir);
      writeFileSync(file("ext"), server ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" : "extendedKeyUsage=clientAuth\n");
      openssl(
        [
          "x509",
          "-req",
          "-in",
          file("csr"),
          "-CA",
          ca("pem"),
          "-CAkey",
          ca("key"),
          "-CAcreateserial",
          "-out",
          file("pem"),
          "-days",
          "1",
          "-extfile",
          file("ext"),
        ],
        dir,
      );
      return { cert: file("pem"), key: file("key") };
    },
  };
}
