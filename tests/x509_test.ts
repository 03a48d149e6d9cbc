import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { derToPem } from "../lib/identity.ts";
import {
  certificatePublicKeyInfo,
  createSelfSignedCertificate,
  ecdsaSignatureToDer,
  encodeLength,
  parseIpAddress,
} from "../lib/x509.ts";

async function newKeys(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
}

async function keyPemOf(keys: CryptoKeyPair): Promise<string> {
  return derToPem(
    new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
    "PRIVATE KEY",
  );
}

Deno.test("x509: node:crypto reads the certificate and its self-signature verifies", async () => {
  const keys = await newKeys();
  const notBefore = new Date("2024-05-06T07:08:09.999Z");
  const der = await createSelfSignedCertificate(keys, {
    commonName: "swarmshare tracker",
    hosts: ["127.0.0.1", "::1", "2001:db8::ffff:10.0.0.1", "tracker.example"],
    notBefore,
    validDays: 30,
  });
  const certificate = new X509Certificate(der);
  assert.equal(certificate.subject, "CN=swarmshare tracker");
  assert.equal(certificate.issuer, "CN=swarmshare tracker");
  assert.equal(
    certificate.subjectAltName,
    "IP Address:127.0.0.1, IP Address:::1, IP Address:2001:db8::ffff:a00:1, DNS:tracker.example",
  );
  assert.equal(certificate.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(certificate.checkIP("10.0.0.1"), undefined);
  assert.equal(certificate.validFromDate.toISOString(), "2024-05-06T07:08:09.000Z");
  assert.equal(certificate.validToDate.toISOString(), "2024-06-05T07:08:09.000Z");
  assert.equal(certificate.ca, false);
  assert.ok(certificate.verify(certificate.publicKey), "self-signature verifies");
  assert.ok(certificate.checkPrivateKey(createPrivateKey(await keyPemOf(keys))));
  assert.ok(!certificate.checkPrivateKey(createPrivateKey(await keyPemOf(await newKeys()))));
  assert.ok(!certificate.verify(new X509Certificate(await selfSigned()).publicKey));
  assert.match(certificate.serialNumber, /^[4-7][0-9A-F]{31}$/, "positive, 16 bytes");
  assert.deepEqual(
    certificatePublicKeyInfo(der),
    new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey)),
  );
});

Deno.test("x509: defaults, far dates and refused input", async (t) => {
  await t.step("default validity starts a day ago and lasts 3650 days", async () => {
    const before = Date.now();
    const certificate = new X509Certificate(await selfSigned());
    const from = certificate.validFromDate.getTime();
    assert.ok(from <= before - 86_400_000 + 1000 && from >= before - 86_400_000 - 2000);
    assert.equal(certificate.validToDate.getTime() - from, 3650 * 86_400_000);
    assert.equal(certificate.subjectAltName, undefined, "no hosts, no SAN extension");
  });
  await t.step("GeneralizedTime from 2050 on", async () => {
    const keys = await newKeys();
    const der = await createSelfSignedCertificate(keys, {
      commonName: "x",
      notBefore: new Date("2049-12-31T23:59:59Z"),
      validDays: 1,
    });
    const certificate = new X509Certificate(der);
    assert.equal(certificate.validFromDate.toISOString(), "2049-12-31T23:59:59.000Z");
    assert.equal(certificate.validToDate.toISOString(), "2050-01-01T23:59:59.000Z");
    const text = new TextDecoder("latin1").decode(der);
    assert.ok(text.includes("\x17\x0d491231235959Z"), "UTCTime before 2050");
    assert.ok(text.includes("\x18\x0f20500101235959Z"), "GeneralizedTime after");
  });
  await t.step("a non-P-256 key or a bad host is refused", async () => {
    const ed = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]);
    await assert.rejects(
      createSelfSignedCertificate(ed as CryptoKeyPair, { commonName: "x" }),
      /ECDSA P-256/,
    );
    await assert.rejects(
      createSelfSignedCertificate(await newKeys(), { commonName: "x", hosts: ["bad host"] }),
      /"bad host" is neither an IP address nor a DNS name/,
    );
  });
  await t.step("garbage is not a certificate", () => {
    assert.throws(() => certificatePublicKeyInfo(new Uint8Array([0x30, 0x05, 1])), TypeError);
    assert.throws(() => certificatePublicKeyInfo(new Uint8Array(0)), TypeError);
  });
});

Deno.test("x509: DER length octets, short and long forms", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0x81, 0x80]],
    [255, [0x81, 0xff]],
    [256, [0x82, 0x01, 0x00]],
    [65_535, [0x82, 0xff, 0xff]],
    [65_536, [0x83, 0x01, 0x00, 0x00]],
    [0x01020304, [0x84, 0x01, 0x02, 0x03, 0x04]],
  ];
  for (const [length, expected] of cases) {
    assert.deepEqual([...encodeLength(length)], expected, `length ${length}`);
  }
  assert.throws(() => encodeLength(-1), RangeError);
});

Deno.test("x509: ECDSA signatures become minimal DER INTEGER pairs", () => {
  const raw = new Uint8Array(64);
  raw[31] = 0x01; // r = 1
  raw[32] = 0x80; // s has its high bit set: needs a leading zero
  const der = ecdsaSignatureToDer(raw);
  assert.deepEqual(
    [...der.subarray(0, 7)],
    [0x30, 3 + 35, 0x02, 0x01, 0x01, 0x02, 0x21],
  );
  assert.equal(der[7], 0x00);
  assert.equal(der[8], 0x80);
  assert.equal(der.length, 2 + 3 + 35);
  assert.throws(() => ecdsaSignatureToDer(new Uint8Array(63)), /64 bytes/);
});

Deno.test("x509: IP literals", () => {
  assert.deepEqual([...parseIpAddress("10.0.0.255")!], [10, 0, 0, 255]);
  assert.deepEqual([...parseIpAddress("[::1]")!], [...new Array(15).fill(0), 1]);
  assert.deepEqual(
    [...parseIpAddress("fe80::1:2")!],
    [0xfe, 0x80, ...new Array(10).fill(0), 0, 1, 0, 2],
  );
  for (
    const bad of ["1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", ":1::", "1:2:3:4:5:6:7:8:9", "x"]
  ) {
    assert.equal(parseIpAddress(bad), undefined, bad);
  }
});

Deno.test("x509: a TLS handshake trusts the certificate, and only it", async () => {
  const keys = await newKeys();
  const der = await createSelfSignedCertificate(keys, {
    commonName: "swarmshare tracker",
    hosts: ["127.0.0.1"],
  });
  const certPem = derToPem(der, "CERTIFICATE");
  using listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: certPem,
    key: await keyPemOf(keys),
  });
  const serve = async () => {
    const connection = await listener.accept();
    try {
      await connection.handshake();
      await connection.write(new TextEncoder().encode("hi"));
    } catch {
      // the refused client hangs up mid-handshake
    } finally {
      connection.close();
    }
  };

  const served = serve();
  const client = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [certPem],
  });
  try {
    await client.handshake();
    const buffer = new Uint8Array(2);
    assert.equal(await client.read(buffer), 2);
    assert.equal(new TextDecoder().decode(buffer), "hi");
  } finally {
    client.close();
  }
  await served;

  const refused = serve();
  const stranger = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [derToPem(await selfSigned(["127.0.0.1"]), "CERTIFICATE")],
  });
  try {
    await assert.rejects(stranger.handshake(), /UnknownIssuer/);
  } finally {
    stranger.close();
  }
  await refused;
});

async function selfSigned(hosts?: string[]): Promise<Uint8Array> {
  return await createSelfSignedCertificate(await newKeys(), { commonName: "other", hosts });
}
