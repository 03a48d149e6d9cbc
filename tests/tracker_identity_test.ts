import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { UserError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/identity.ts";
import { loadOperatorCertificate, loadTrackerIdentity } from "../tracker/identity.ts";
import { SqliteStore } from "../tracker/sqlite_store.ts";
import { TempDir } from "./harness.ts";

function userError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof UserError && pattern.test(error.message);
}

Deno.test("tracker identity: made on first start, the same after a restart", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("tracker.db");
  const first = new SqliteStore(path);
  let made;
  try {
    made = await loadTrackerIdentity(first, ["127.0.0.1", "::1"]);
  } finally {
    await first.close();
  }
  const certificate = new X509Certificate(made.certDer);
  assert.equal(certificate.subject, "CN=swarmshare tracker");
  assert.equal(certificate.subjectAltName, "IP Address:127.0.0.1, IP Address:::1");

  const second = new SqliteStore(path);
  try {
    const loaded = await loadTrackerIdentity(second, ["10.0.0.9"]);
    assert.equal(loaded.fingerprint, made.fingerprint, "the pinned fingerprint survives");
    assert.equal(loaded.keyPem, made.keyPem);
    assert.equal(loaded.certPem, made.certPem);
  } finally {
    await second.close();
  }

  const other = new SqliteStore(dir.join("other.db"));
  try {
    const fresh = await loadTrackerIdentity(other, ["127.0.0.1"]);
    assert.notEqual(fresh.fingerprint, made.fingerprint, "each database has its own");
  } finally {
    await other.close();
  }
});

Deno.test("tracker identity: a damaged stored identity is a UserError", async () => {
  const store = new SqliteStore(":memory:");
  try {
    await store.putSetting("tls_identity_pem", new TextEncoder().encode("junk"));
    await assert.rejects(loadTrackerIdentity(store, []), userError(/TLS identity .* damaged/));
  } finally {
    await store.close();
  }
});

Deno.test("tracker identity: operator certificate files", async (t) => {
  await using dir = await TempDir.create();
  const leaf = await generateIdentity("tracker.example", ["tracker.example"]);
  const issuer = await generateIdentity("example CA");
  const chain = leaf.certPem + issuer.certPem;
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(dir.join(name), text);
    return dir.join(name);
  };
  const chainFile = await write("chain.pem", chain);
  const keyFile = await write("key.pem", leaf.keyPem);

  await t.step("a chain and a PKCS#8 key: the fingerprint is the first certificate's", async () => {
    const loaded = await loadOperatorCertificate(chainFile, keyFile);
    assert.equal(loaded.certPem, chain);
    assert.equal(loaded.keyPem, leaf.keyPem);
    assert.equal(loaded.fingerprint, leaf.fingerprint);
  });
  await t.step("RSA and EC keys are taken without parsing them", async () => {
    for (const label of ["RSA PRIVATE KEY", "EC PRIVATE KEY"]) {
      const key = `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`;
      const loaded = await loadOperatorCertificate(chainFile, await write("other.key", key));
      assert.equal(loaded.keyPem, key);
    }
  });
  await t.step("missing, empty, wrong or oversized files are named", async () => {
    const cases: [string, string, RegExp][] = [
      [dir.join("none.pem"), keyFile, /--tls-cert .*none\.pem: no such file/],
      [chainFile, dir.join("none.key"), /--tls-key .*none\.key: no such file/],
      [await write("empty.pem", ""), keyFile, /--tls-cert .*empty\.pem: no CERTIFICATE block/],
      [keyFile, keyFile, /--tls-cert .*key\.pem: no CERTIFICATE block/],
      [chainFile, chainFile, /--tls-key .*chain\.pem: no PRIVATE KEY block/],
      [
        chainFile,
        await write("half.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"),
        /--tls-key .*half\.key: no PRIVATE KEY block/,
      ],
      [
        chainFile,
        await write(
          "encrypted.key",
          "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ),
        /--tls-key .*encrypted\.key: the private key is encrypted/,
      ],
      [
        await write("huge.pem", chain + "#".repeat(1024 * 1024)),
        keyFile,
        /--tls-cert .*huge\.pem: larger than 1 MiB/,
      ],
      [dir.path, keyFile, /--tls-cert .*: cannot read the certificate/],
    ];
    for (const [certPath, keyPath, pattern] of cases) {
      await assert.rejects(
        loadOperatorCertificate(certPath, keyPath),
        userError(pattern),
        `${certPath} ${keyPath}`,
      );
    }
  });
});
