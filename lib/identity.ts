/**
 * Who a tracker or client is: an ECDSA P-256 key pair with a self-signed certificate, named by
 * the SHA-256 fingerprint of that certificate (as Syncthing does). Also the PEM and fingerprint
 * text forms users see and paste. Pure: keeping identities on disk is the caller's job.
 *
 * @example
 * ```ts
 * const me = await generateIdentity("swarmshare client");
 * console.log(formatFingerprint(me.fingerprint)); // SHA256:3f1c…
 * ```
 *
 * @module
 */

import { UsageError, UserError } from "./errors.ts";
import { certificatePublicKeyInfo, createSelfSignedCertificate } from "./x509.ts";

/** SHA-256 of a certificate's DER, 64 lowercase hex characters. */
export type Fingerprint = string;

const FINGERPRINT_PREFIX = "SHA256:";
const FINGERPRINT_PATTERN = /^[0-9a-f]{64}$/;
const KEY_ALGORITHM: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };
const PEM_LINE_LENGTH = 64;
/** How much of a refused text an error message quotes. */
const QUOTE_LIMIT = 120;

/** SHA-256 of a certificate's DER, 64 lowercase hex characters. */
export async function fingerprintOf(certDer: Uint8Array): Promise<Fingerprint> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(certDer));
  return new Uint8Array(digest).toHex();
}

/** How fingerprints are shown to users: "SHA256:" + the 64 lowercase hex characters. */
export function formatFingerprint(fingerprint: Fingerprint): string {
  if (!FINGERPRINT_PATTERN.test(fingerprint)) {
    throw new TypeError(`not a fingerprint: ${quote(fingerprint)}`);
  }
  return FINGERPRINT_PREFIX + fingerprint;
}

/**
 * Accepts what users paste: with or without "SHA256:" (any case), hex in any case, with or
 * without ":" between byte pairs. Throws `UsageError` naming the bad text otherwise.
 *
 * @example
 * ```ts
 * parseFingerprint("sha256:AB:CD:…"); // "abcd…"
 * ```
 */
export function parseFingerprint(text: string): Fingerprint {
  let hex = text.trim();
  if (hex.slice(0, FINGERPRINT_PREFIX.length).toUpperCase() === FINGERPRINT_PREFIX) {
    hex = hex.slice(FINGERPRINT_PREFIX.length);
  }
  if (hex.includes(":")) {
    const pairs = hex.split(":");
    if (pairs.length === 32 && pairs.every((pair) => /^[0-9A-Fa-f]{2}$/.test(pair))) {
      hex = pairs.join("");
    }
  }
  hex = hex.toLowerCase();
  if (!FINGERPRINT_PATTERN.test(hex)) {
    throw new UsageError(
      `not a SHA-256 fingerprint: ${quote(text)} (expected SHA256: and 64 hex digits)`,
    );
  }
  return hex;
}

/** PEM text: a BEGIN line, the base64 in 64-column lines, an END line, a final newline. */
export function derToPem(der: Uint8Array, label: string): string {
  const base64 = der.toBase64();
  const lines = [];
  for (let at = 0; at < base64.length; at += PEM_LINE_LENGTH) {
    lines.push(base64.slice(at, at + PEM_LINE_LENGTH));
  }
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * The DER of the first PEM block with this label; throws a `UserError` naming the label when
 * there is none or it is not base64.
 */
export function pemToDer(pem: string, label: string): Uint8Array {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const start = pem.indexOf(begin);
  const stop = start < 0 ? -1 : pem.indexOf(end, start + begin.length);
  if (stop < 0) throw new UserError(`no ${label} block in PEM text`);
  const body = pem.slice(start + begin.length, stop).replace(/\s+/g, "");
  let der: Uint8Array;
  try {
    der = Uint8Array.fromBase64(body);
  } catch {
    throw new UserError(`the ${label} block is not valid base64`);
  }
  if (der.length === 0) throw new UserError(`the ${label} block is empty`);
  return der;
}

/** A key pair with its self-signed certificate: who a tracker or client is. */
export interface Identity {
  /** ECDSA P-256, extractable private key. */
  keys: CryptoKeyPair;
  certDer: Uint8Array;
  certPem: string;
  /** PKCS#8 "PRIVATE KEY" PEM, for node:tls / Deno TLS. */
  keyPem: string;
  /** Of `certDer`. */
  fingerprint: Fingerprint;
}

/** A new key pair and a self-signed certificate for it (SAN: `hosts`). */
export async function generateIdentity(commonName: string, hosts?: string[]): Promise<Identity> {
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const certDer = await createSelfSignedCertificate(keys, { commonName, hosts });
  return await identityOf(keys, certDer);
}

/**
 * Rebuilds an identity from stored PKCS#8 + certificate DER; throws if the certificate's
 * public key is not the key's (`UserError`), or either is not what it should be.
 */
export async function loadIdentity(pkcs8: Uint8Array, certDer: Uint8Array): Promise<Identity> {
  const { privateKey, publicKey } = await importKeyPair(pkcs8);
  let certificateKey: Uint8Array;
  try {
    certificateKey = certificatePublicKeyInfo(certDer);
  } catch (error) {
    throw new UserError(`the certificate cannot be read: ${(error as Error).message}`);
  }
  const ownKey = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
  if (!sameBytes(certificateKey, ownKey)) {
    throw new UserError("the certificate is not for this private key");
  }
  return await identityOf({ privateKey, publicKey }, new Uint8Array(certDer));
}

/**
 * The ECDSA P-256 key pair of a PKCS#8 private key (extractable; the public half is derived
 * from it). Throws `UserError` if the bytes are not such a key.
 */
export async function importKeyPair(pkcs8: Uint8Array): Promise<CryptoKeyPair> {
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(pkcs8),
      KEY_ALGORITHM,
      true,
      [
        "sign",
      ],
    );
  } catch {
    throw new UserError("the private key is not an ECDSA P-256 PKCS#8 key");
  }
  // the public half is the private key's JWK without d
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey("jwk", { kty, crv, x, y }, KEY_ALGORITHM, true, [
    "verify",
  ]);
  return { privateKey, publicKey };
}

/** A further certificate for the same key (e.g. a per-run serving certificate naming the address peers dial). */
export async function issueCertificate(
  identity: Identity,
  commonName: string,
  hosts: string[],
): Promise<{ certDer: Uint8Array; certPem: string; fingerprint: Fingerprint }> {
  const certDer = await createSelfSignedCertificate(identity.keys, { commonName, hosts });
  return {
    certDer,
    certPem: derToPem(certDer, "CERTIFICATE"),
    fingerprint: await fingerprintOf(certDer),
  };
}

async function identityOf(keys: CryptoKeyPair, certDer: Uint8Array): Promise<Identity> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return {
    keys,
    certDer,
    certPem: derToPem(certDer, "CERTIFICATE"),
    keyPem: derToPem(pkcs8, "PRIVATE KEY"),
    fingerprint: await fingerprintOf(certDer),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text);
}
