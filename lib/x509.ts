/**
 * Self-signed X.509 v3 certificates for ECDSA P-256 keys, encoded in DER by hand (RFC 5280):
 * just what a TLS identity pinned by fingerprint needs, and a bounded reader for the one field
 * we take back out (the subject public key). Web Crypto signs; nothing here touches a socket.
 *
 * @example
 * ```ts
 * const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
 *   "sign",
 *   "verify",
 * ]);
 * const der = await createSelfSignedCertificate(keys, { commonName: "me", hosts: ["127.0.0.1"] });
 * ```
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  /** [0] EXPLICIT, constructed: the TBSCertificate version. */
  version: 0xa0,
  /** [3] EXPLICIT, constructed: the TBSCertificate extensions. */
  extensions: 0xa3,
  /** GeneralName dNSName [2] IMPLICIT IA5String. */
  dnsName: 0x82,
  /** GeneralName iPAddress [7] IMPLICIT OCTET STRING. */
  ipAddress: 0x87,
} as const;

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const DAY_MS = 86_400_000;
/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on. */
const FIRST_GENERALIZED_TIME_YEAR = 2050;
const SERIAL_LENGTH_BYTES = 16;
/** P-256 scalars: r and s are 32 bytes each in Web Crypto's raw (IEEE P1363) signature. */
const P256_SCALAR_BYTES = 32;

/** Options for {@linkcode createSelfSignedCertificate}. */
export interface CertificateOptions {
  commonName: string;
  /** Subject alternative names: IPv4/IPv6 literals become iPAddress entries, anything else dNSName. */
  hosts?: string[];
  /** Start of validity. Default: now minus 1 day (clock skew). */
  notBefore?: Date;
  /** Length of validity from `notBefore`, in days. Default 3650. */
  validDays?: number;
}

/**
 * Makes a self-signed X.509 v3 certificate (DER) for an ECDSA P-256 key pair: CA:FALSE,
 * digitalSignature, serverAuth + clientAuth, and the given hosts as subject alternative names.
 */
export async function createSelfSignedCertificate(
  keys: CryptoKeyPair,
  options: CertificateOptions,
): Promise<Uint8Array> {
  const algorithm = keys.privateKey.algorithm as EcKeyAlgorithm;
  if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
    throw new TypeError(`certificates need an ECDSA P-256 key, not ${algorithm.name}`);
  }
  const notBefore = options.notBefore ?? new Date(Date.now() - DAY_MS);
  const notAfter = new Date(notBefore.getTime() + (options.validDays ?? 3650) * DAY_MS);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const name = encodeName(options.commonName);
  const signatureAlgorithm = sequence(oid(OID.ecdsaWithSha256));

  const extensions = [
    extension(OID.basicConstraints, true, sequence()), // cA defaults to FALSE
    extension(OID.keyUsage, true, bitString(new Uint8Array([0x80]), 7)), // digitalSignature
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
  ];
  if (options.hosts && options.hosts.length > 0) {
    extensions.push(
      extension(OID.subjectAltName, false, sequence(...options.hosts.map(generalName))),
    );
  }

  const tbs = sequence(
    tlv(TAG.version, integer(new Uint8Array([2]))),
    integer(randomSerial()),
    signatureAlgorithm,
    name,
    sequence(encodeTime(notBefore), encodeTime(notAfter)),
    name,
    spki,
    tlv(TAG.extensions, sequence(...extensions)),
  );
  const raw = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, tbs),
  );
  return sequence(tbs, signatureAlgorithm, bitString(ecdsaSignatureToDer(raw)));
}

/**
 * The DER bytes of a certificate's SubjectPublicKeyInfo, as `exportKey("spki")` gives them.
 * Throws `TypeError` if `certDer` is not a certificate.
 */
export function certificatePublicKeyInfo(certDer: Uint8Array): Uint8Array {
  const certificate = readElement(certDer, 0, TAG.sequence);
  if (certificate.end !== certDer.length) throw new TypeError("trailing bytes after certificate");
  const tbs = readElement(certDer, certificate.contentStart, TAG.sequence);
  let at = tbs.contentStart;
  if (certDer[at] === TAG.version) at = readElement(certDer, at, TAG.version).end;
  // serialNumber, signature, issuer, validity, subject
  at = readElement(certDer, at, TAG.integer).end;
  for (let i = 0; i < 4; i++) at = readElement(certDer, at, TAG.sequence).end;
  const spki = readElement(certDer, at, TAG.sequence);
  if (spki.end > tbs.end) throw new TypeError("certificate public key runs past its TBS part");
  return certDer.slice(at, spki.end);
}

/** The DER length octets: short form below 128, else 0x80 + count, then big-endian bytes. */
export function encodeLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad length ${length}`);
  if (length < 0x80) return new Uint8Array([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}

/**
 * Converts a Web Crypto ECDSA P-256 signature (raw r || s, 64 bytes) to the DER form X.509 and
 * TLS use: `SEQUENCE { INTEGER r, INTEGER s }`.
 */
export function ecdsaSignatureToDer(raw: Uint8Array): Uint8Array {
  if (raw.length !== 2 * P256_SCALAR_BYTES) {
    throw new TypeError(`a P-256 signature has 64 bytes, not ${raw.length}`);
  }
  return sequence(
    integer(raw.subarray(0, P256_SCALAR_BYTES)),
    integer(raw.subarray(P256_SCALAR_BYTES)),
  );
}

/** Parses an IPv4 or IPv6 literal (IPv6 optionally in brackets) to 4 or 16 bytes, else undefined. */
export function parseIpAddress(text: string): Uint8Array | undefined {
  const ipv4 = parseIpv4(text);
  if (ipv4) return ipv4;
  const inner = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return parseIpv6(inner);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // no leading zeros: "010" is octal to some parsers and decimal to others
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const words: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const ipv4 = parseIpv4(part);
        if (!ipv4) return undefined;
        words.push((ipv4[0] << 8) | ipv4[1], (ipv4[2] << 8) | ipv4[3]);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        words.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return words;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (!head || !tail) return undefined;
  // an embedded IPv4 address may only end the address
  if (halves.length === 2 && halves[0].includes(".")) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const words = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

function generalName(host: string): Uint8Array {
  const ip = parseIpAddress(host);
  if (ip) return tlv(TAG.ipAddress, ip);
  // dNSName is an IA5String: ASCII letters, digits, hyphens, dots (and a leading wildcard)
  if (!/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(host) || host.length > 253) {
    throw new TypeError(`${JSON.stringify(host)} is neither an IP address nor a DNS name`);
  }
  return tlv(TAG.dnsName, new TextEncoder().encode(host));
}

function randomSerial(): Uint8Array {
  const serial = crypto.getRandomValues(new Uint8Array(SERIAL_LENGTH_BYTES));
  // positive (high bit clear) and exactly 16 bytes long (second-highest bit set)
  serial[0] = (serial[0] & 0x3f) | 0x40;
  return serial;
}

function encodeName(commonName: string): Uint8Array {
  const value = tlv(TAG.utf8String, new TextEncoder().encode(commonName));
  return sequence(tlv(TAG.set, sequence(oid(OID.commonName), value)));
}

function encodeTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ, always UTC
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = date.getUTCFullYear();
  if (year < 1950 || year >= FIRST_GENERALIZED_TIME_YEAR) {
    if (year < 0 || year > 9999) throw new RangeError(`date out of range: ${iso}`);
    return tlv(TAG.generalizedTime, new TextEncoder().encode(digits));
  }
  return tlv(TAG.utcTime, new TextEncoder().encode(digits.slice(2)));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), tlv(TAG.boolean, new Uint8Array([0xff])), tlv(TAG.octetString, value))
    : sequence(oid(id), tlv(TAG.octetString, value));
}

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [];
  const pushBase128 = (value: number) => {
    const groups = [value & 0x7f];
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
      groups.unshift((rest & 0x7f) | 0x80);
    }
    bytes.push(...groups);
  };
  pushBase128(arcs[0] * 40 + arcs[1]);
  for (const arc of arcs.slice(2)) pushBase128(arc);
  return tlv(TAG.oid, new Uint8Array(bytes));
}

/** A minimal two's-complement INTEGER from unsigned big-endian bytes. */
function integer(unsigned: Uint8Array): Uint8Array {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const digits = unsigned.subarray(start);
  return digits[0] & 0x80
    ? tlv(TAG.integer, concatBytes(new Uint8Array([0]), digits))
    : tlv(TAG.integer, digits);
}

function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(TAG.bitString, concatBytes(new Uint8Array([unusedBits]), bytes));
}

function sequence(...elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(TAG.sequence, concatBytes(...elements));
}

function tlv(tag: number, content: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatBytes(new Uint8Array([tag]), encodeLength(content.length), content);
}

/** Reads one DER element's header at `at`, checking its tag and that it fits in `der`. */
function readElement(
  der: Uint8Array,
  at: number,
  tag: number,
): { contentStart: number; end: number } {
  if (at + 2 > der.length || der[at] !== tag) {
    throw new TypeError(`not a certificate: expected DER tag 0x${tag.toString(16)} at ${at}`);
  }
  let length = der[at + 1];
  let contentStart = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > der.length) {
      throw new TypeError(`not a certificate: bad DER length at ${at}`);
    }
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i];
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) throw new TypeError(`not a certificate: element at ${at} is truncated`);
  return { contentStart, end };
}
