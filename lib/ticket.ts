/**
 * Download tickets: the tracker's signed word that a user is a member of a group in which a
 * file (by info_hash) is shared. A downloader presents its ticket to every peer in the BEP 10
 * extension handshake; a serving peer checks it with the tracker's public key and serves
 * nothing without a good one. Ed25519 through Web Crypto; the format is
 * `base64url(JSON claims) "." base64url(signature over the first part)`.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import { ProtocolError } from "./errors.ts";

/** What a ticket says. */
export interface TicketClaims {
  /** The user it was issued to. */
  user: string;
  group: string;
  /** The file's info_hash, lowercase hex. */
  infoHash: string;
  /**
   * Milliseconds since the epoch (tracker clock) when it was signed: a serving peer refuses
   * a ticket of a (user, group) revoked at or after this moment. Absent in older tickets,
   * which count as issued before any revocation.
   */
  issuedAt?: number;
  /** Milliseconds since the epoch after which it is no longer honoured. */
  expiresAt: number;
  /**
   * SHA-256 (hex) of the certificate of the client it was issued to: a serving peer honours
   * it only from a connection that presented that certificate. Absent when the tracker link
   * was plaintext.
   */
  holder?: string;
}

/**
 * Tickets are short-lived: a downloader asks for a new one before its old one runs out. The
 * tracker issues them for this long by default, and no verifier honours a longer one.
 */
export const TICKET_LIFETIME_MS = 10 * 60_000;

/** Clocks of tracker and peers may differ a little. */
export const CLOCK_SKEW_MS = 60_000;
const MAX_TICKET_LENGTH = 2048;

const encoder = new TextEncoder();
const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;

/** A new Ed25519 key pair for signing tickets. */
export async function generateTicketKeys(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
}

/** The public key as it travels to clients: raw 32 bytes, base64url. */
export async function exportPublicKey(key: CryptoKey): Promise<string> {
  return new Uint8Array(await crypto.subtle.exportKey("raw", key)).toBase64(BASE64URL);
}

/** Imports a public key sent by the tracker; throws `ProtocolError` if it is not one. */
export async function importPublicKey(text: string): Promise<CryptoKey> {
  try {
    const raw = Uint8Array.fromBase64(text, BASE64URL);
    return await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
  } catch {
    throw new ProtocolError("the tracker's ticket key is not an Ed25519 public key");
  }
}

/** Signs a ticket with the tracker's private key. */
export async function signTicket(claims: TicketClaims, privateKey: CryptoKey): Promise<string> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey));
  return signTicketNow(claims, ticketSigningKey(pkcs8));
}

/** The tracker's Ed25519 private key (PKCS#8 DER) as `signTicketNow` takes it. */
export function ticketSigningKey(pkcs8: Uint8Array): KeyObject {
  return createPrivateKey({ key: pkcs8 as Buffer, format: "der", type: "pkcs8" });
}

/**
 * Signs a ticket synchronously (~25 µs). The tracker signs one for every `locate_file` and
 * `find_peers`; an asynchronous Web Crypto signature is a task the runtime schedules behind
 * all pending I/O, and under load that made those requests wait seconds (p99 5 s of 1,000
 * busy connections) while the signing itself is microseconds.
 */
export function signTicketNow(claims: TicketClaims, key: KeyObject): string {
  const body = encoder.encode(JSON.stringify(claims)).toBase64(BASE64URL);
  const signature = sign(null, encoder.encode(body), key);
  return `${body}.${new Uint8Array(signature).toBase64(BASE64URL)}`;
}

/**
 * The lifetime a ticket was issued with (`expiresAt - issuedAt`, both by the tracker's clock),
 * read without checking the signature: for a downloader timing its own ticket's renewal,
 * never for deciding access. `undefined` for a malformed ticket or one without `issuedAt`.
 */
export function ticketLifetimeMs(ticket: string): number | undefined {
  try {
    const body = ticket.length <= MAX_TICKET_LENGTH ? ticket.split(".")[0] : "";
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(body, BASE64URL)));
    const { issuedAt, expiresAt } = claims ?? {};
    if (!Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt)) return undefined;
    return expiresAt > issuedAt ? expiresAt - issuedAt : undefined;
  } catch {
    return undefined;
  }
}

/** Why a ticket was refused. */
export class TicketError extends ProtocolError {
  override name = "TicketError";
}

/**
 * Checks a ticket's signature, expiry and file. Resolves with its claims; throws
 * `TicketError` naming what is wrong.
 */
export async function verifyTicket(
  ticket: string,
  publicKey: CryptoKey,
  expected: {
    infoHash: string;
    /** The fingerprint of the certificate the presenter showed; undefined in plaintext. */
    holder?: string;
    now?: number;
    /** How long past its expiry a ticket is still honoured: 0 to `CLOCK_SKEW_MS` (default). */
    skewMs?: number;
  },
): Promise<TicketClaims> {
  if (ticket.length > MAX_TICKET_LENGTH) throw new TicketError("ticket too long");
  const [body, signature, extra] = ticket.split(".");
  if (!body || !signature || extra !== undefined) throw new TicketError("malformed ticket");
  let signatureBytes: Uint8Array<ArrayBuffer>;
  let claims: TicketClaims;
  try {
    signatureBytes = Uint8Array.fromBase64(signature, BASE64URL);
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(body, BASE64URL)));
  } catch {
    throw new TicketError("malformed ticket");
  }
  // one spelling per signature: decoding skips blanks and the last character's spare bits,
  // which would let anyone holding a ticket make other strings that verify as it
  if (signatureBytes.toBase64(BASE64URL) !== signature) throw new TicketError("malformed ticket");
  const valid = await crypto.subtle.verify(
    "Ed25519",
    publicKey,
    signatureBytes,
    encoder.encode(body),
  );
  if (!valid) throw new TicketError("ticket signature does not verify");
  if (
    typeof claims !== "object" || claims === null || typeof claims.user !== "string" ||
    typeof claims.group !== "string" || typeof claims.infoHash !== "string" ||
    typeof claims.expiresAt !== "number"
  ) {
    throw new TicketError("ticket claims are malformed");
  }
  if (claims.holder !== undefined && typeof claims.holder !== "string") {
    throw new TicketError("ticket claims are malformed");
  }
  if (
    claims.issuedAt !== undefined &&
    (!Number.isSafeInteger(claims.issuedAt) || claims.issuedAt > claims.expiresAt)
  ) {
    throw new TicketError("ticket claims are malformed");
  }
  if (claims.infoHash !== expected.infoHash) throw new TicketError("ticket is for another file");
  const now = expected.now ?? Date.now();
  const skewMs = Math.min(Math.max(expected.skewMs ?? CLOCK_SKEW_MS, 0), CLOCK_SKEW_MS);
  if (claims.expiresAt + skewMs < now) throw new TicketError("ticket has expired");
  // whatever the signer wrote, no ticket is honoured for longer than the tracker issues them
  if (claims.expiresAt - now > TICKET_LIFETIME_MS + CLOCK_SKEW_MS) {
    throw new TicketError("ticket lifetime exceeds the limit");
  }
  if (expected.holder !== undefined && claims.holder !== expected.holder) {
    throw new TicketError("ticket was issued to another device");
  }
  return claims;
}
