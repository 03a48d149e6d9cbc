import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { UsageError, UserError } from "../lib/errors.ts";
import {
  derToPem,
  fingerprintOf,
  formatFingerprint,
  generateIdentity,
  issueCertificate,
  loadIdentity,
  parseFingerprint,
  pemToDer,
} from "../lib/identity.ts";
import { seededRandom } from "./harness.ts";

const HEX = "0123456789abcdef".repeat(4);

Deno.test("identity: a generated identity is consistent and survives a round trip", async () => {
  const identity = await generateIdentity("swarmshare client", ["127.0.0.1"]);
  assert.match(identity.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(
    identity.fingerprint,
    createHash("sha256").update(identity.certDer).digest("hex"),
  );
  assert.equal(formatFingerprint(identity.fingerprint), `SHA256:${identity.fingerprint}`);
  const certificate = new X509Certificate(identity.certPem);
  assert.equal(certificate.subject, "CN=swarmshare client");
  assert.equal(certificate.fingerprint256.replaceAll(":", "").toLowerCase(), identity.fingerprint);
  assert.equal(identity.keys.privateKey.extractable, true);

  const loaded = await loadIdentity(pemToDer(identity.keyPem, "PRIVATE KEY"), identity.certDer);
  assert.equal(loaded.fingerprint, identity.fingerprint);
  assert.equal(loaded.keyPem, identity.keyPem);
  assert.equal(loaded.certPem, identity.certPem);
  // the rebuilt key pair still signs what the original public key verifies
  const data = new TextEncoder().encode("swarm");
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    loaded.keys.privateKey,
    data,
  );
  assert.ok(
    await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      identity.keys.publicKey,
      signature,
      data,
    ),
  );
});

Deno.test("identity: loadIdentity refuses a certificate for another key, and garbage", async () => {
  const mine = await generateIdentity("a");
  const theirs = await generateIdentity("b");
  const pkcs8 = pemToDer(mine.keyPem, "PRIVATE KEY");
  await assert.rejects(
    loadIdentity(pkcs8, theirs.certDer),
    (error) => error instanceof UserError && /not for this private key/.test(error.message),
  );
  await assert.rejects(loadIdentity(pkcs8, new Uint8Array([1, 2, 3])), UserError);
  await assert.rejects(loadIdentity(new Uint8Array([1, 2, 3]), mine.certDer), UserError);
});

Deno.test("identity: issueCertificate keeps the key and makes a new fingerprint", async () => {
  const identity = await generateIdentity("swarmshare client");
  const issued = await issueCertificate(identity, "swarmshare peer", ["10.1.2.3", "::1"]);
  assert.notEqual(issued.fingerprint, identity.fingerprint);
  assert.equal(issued.fingerprint, await fingerprintOf(issued.certDer));
  assert.deepEqual(pemToDer(issued.certPem, "CERTIFICATE"), issued.certDer);
  const original = new X509Certificate(identity.certDer);
  const further = new X509Certificate(issued.certDer);
  assert.equal(further.subject, "CN=swarmshare peer");
  assert.equal(further.subjectAltName, "IP Address:10.1.2.3, IP Address:::1");
  assert.ok(
    further.publicKey.export({ type: "spki", format: "der" }).equals(
      original.publicKey.export({ type: "spki", format: "der" }),
    ),
  );
  assert.ok(further.verify(original.publicKey));
  // and it loads with the identity's key
  const reloaded = await loadIdentity(pemToDer(identity.keyPem, "PRIVATE KEY"), issued.certDer);
  assert.equal(reloaded.fingerprint, issued.fingerprint);
});

Deno.test("identity: PEM round trips and refusals", async (t) => {
  await t.step("64-column lines that decode to the same bytes", () => {
    for (const length of [1, 47, 48, 49, 500]) {
      const der = crypto.getRandomValues(new Uint8Array(length));
      const pem = derToPem(der, "CERTIFICATE");
      const lines = pem.trimEnd().split("\n");
      assert.equal(lines[0], "-----BEGIN CERTIFICATE-----");
      assert.equal(lines.at(-1), "-----END CERTIFICATE-----");
      assert.ok(lines.slice(1, -1).every((line) => line.length <= 64 && line.length > 0));
      assert.ok(lines.slice(1, -2).every((line) => line.length === 64));
      assert.deepEqual(pemToDer(pem, "CERTIFICATE"), der);
      assert.deepEqual(pemToDer(pem.replaceAll("\n", "\r\n"), "CERTIFICATE"), der);
    }
  });
  await t.step("the first block with the label is taken", () => {
    const text = derToPem(new Uint8Array([1]), "EC PRIVATE KEY") +
      derToPem(new Uint8Array([2]), "PRIVATE KEY") + derToPem(new Uint8Array([3]), "PRIVATE KEY");
    assert.deepEqual(pemToDer(text, "PRIVATE KEY"), new Uint8Array([2]));
  });
  await t.step("missing, empty or not base64", () => {
    for (
      const text of [
        "",
        derToPem(new Uint8Array([1]), "PRIVATE KEY"),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
      ]
    ) {
      assert.throws(
        () => pemToDer(text, "CERTIFICATE"),
        (error) => error instanceof UserError && error.message.includes("CERTIFICATE"),
        JSON.stringify(text),
      );
    }
  });
});

Deno.test("identity: parseFingerprint accepts what users paste", () => {
  const colons = HEX.match(/../g)!.join(":");
  const accepted = [
    HEX,
    HEX.toUpperCase(),
    `SHA256:${HEX}`,
    `sha256:${HEX}`,
    `Sha256:${HEX.toUpperCase()}`,
    colons,
    colons.toUpperCase(),
    `SHA256:${colons}`,
    `  SHA256:${HEX}\n`,
  ];
  for (const text of accepted) assert.equal(parseFingerprint(text), HEX, text);
});

Deno.test("identity: parseFingerprint refuses anything else, naming it", () => {
  const colons = HEX.match(/../g)!.join(":");
  const refused = [
    "",
    "SHA256:",
    HEX.slice(1),
    HEX + "0",
    HEX.slice(0, -1) + "g",
    `SHA1:${HEX}`,
    `SHA256:SHA256:${HEX}`,
    `${colons}:`,
    `:${colons}`,
    colons.replace(":", "::"),
    colons.slice(0, 4) + colons.slice(5), // one pair of three digits
    HEX.slice(0, 32) + " " + HEX.slice(32),
    HEX.match(/..../g)!.join(":"), // colons between quadruples, not pairs
  ];
  for (const text of refused) {
    assert.throws(
      () => parseFingerprint(text),
      (error) => error instanceof UsageError && error.message.includes(JSON.stringify(text)),
      JSON.stringify(text),
    );
  }
  const long = "x".repeat(10_000);
  assert.throws(() => parseFingerprint(long), (error: Error) => error.message.length < 300);
});

Deno.test("identity: parseFingerprint on seeded random pastes agrees with a model", () => {
  const random = seededRandom(12);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const alphabet = "0123456789abcdefABCDEFxX: ";
  for (let round = 0; round < 2000; round++) {
    const bytes = Array.from({ length: 32 }, () => Math.floor(random() * 256));
    const hex = bytes.map((byte) => byte.toString(16).padStart(2, "0")).join("");
    const style = pick(["plain", "colons", "upper", "mutated"] as const);
    let text = style === "colons" ? hex.match(/../g)!.join(":") : hex;
    if (style === "upper") text = text.toUpperCase();
    if (random() < 0.5) text = pick(["SHA256:", "sha256:", "ShA256:"]) + text;
    if (style === "mutated") {
      const at = Math.floor(random() * (text.length + 1));
      const edit = pick(["insert", "delete", "replace"] as const);
      const char = pick([...alphabet]);
      text = edit === "insert"
        ? text.slice(0, at) + char + text.slice(at)
        : text.slice(0, at) + (edit === "replace" ? char : "") + text.slice(at + 1);
    }
    // the model: strip one prefix, then either 64 hex digits or 32 colon-separated pairs
    const body = text.trim().replace(/^sha256:/i, "");
    const valid = /^[0-9a-f]{64}$/i.test(body) || /^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/i.test(body);
    if (valid) {
      assert.equal(parseFingerprint(text), body.replaceAll(":", "").toLowerCase(), text);
      if (style !== "mutated") assert.equal(parseFingerprint(text), hex);
    } else {
      assert.throws(() => parseFingerprint(text), UsageError, text);
    }
  }
});

Deno.test("identity: formatFingerprint only takes a parsed fingerprint", () => {
  assert.equal(formatFingerprint(HEX), `SHA256:${HEX}`);
  assert.equal(parseFingerprint(formatFingerprint(HEX)), HEX);
  assert.throws(() => formatFingerprint(HEX.toUpperCase()), TypeError);
  assert.throws(() => formatFingerprint(`SHA256:${HEX}`), TypeError);
});
