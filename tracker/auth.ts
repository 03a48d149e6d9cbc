/**
 * Credentials on the tracker: salted scrypt password hashes compared in constant time,
 * session tokens of which only a SHA-256 digest is stored, and the Ed25519 key that signs
 * download tickets. Nothing here logs a secret.
 *
 * @module
 */

import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import {
  exportPublicKey,
  generateTicketKeys,
  signTicketNow,
  TICKET_LIFETIME_MS,
  ticketSigningKey,
} from "../lib/ticket.ts";
import { TicketCache, type TicketRequest, ticketReuseMs } from "./ticket_cache.ts";

/** scrypt cost: N = 2^15, r = 8 (32 MiB, ~100 ms here), the OWASP-recommended floor. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keyLength: 32, saltLength: 16 };
const SCRYPT_MAX_MEMORY = 128 * SCRYPT.N * SCRYPT.r * 2;

function deriveKey(
  password: string,
  salt: Uint8Array,
  params: { N: number; r: number; p: number; keyLength: number },
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize("NFC"),
      salt,
      params.keyLength,
      {
        N: params.N,
        r: params.r,
        p: params.p,
        maxmem: Math.max(SCRYPT_MAX_MEMORY, 128 * params.N * params.r * 2),
      },
      (error, key) => error ? reject(error) : resolve(new Uint8Array(key)),
    );
  });
}

/** Hashes a password as `scrypt$N$r$p$<salt b64>$<key b64>`, self-describing for later upgrades. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltLength);
  const key = await deriveKey(password, salt, SCRYPT);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toBase64(), key.toBase64()].join("$");
}

/** True when `password` matches the stored hash; false for any malformed stored value. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = decodeBase64(parts[4]);
  const expected = decodeBase64(parts[5]);
  if (![N, r, p].every(Number.isSafeInteger) || expected.length === 0) return false;
  const actual = await deriveKey(password, salt, { N, r, p, keyLength: expected.length });
  return timingSafeEqual(actual, expected);
}

/**
 * A hash of a random password, verified against when the user does not exist, so that an
 * unknown user takes as long to refuse as a wrong password.
 */
export function makeDecoyHash(): Promise<string> {
  return hashPassword(randomBytes(16).toBase64());
}

/** A new session token: 32 random bytes, base64url. Only the client ever holds it in clear. */
export function newSessionToken(): string {
  return randomBytes(32).toString("base64url");
}

/** The digest under which a session token is stored and looked up. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function decodeBase64(text: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    return new Uint8Array(0);
  }
}

/** Issues download tickets with the tracker's key. */
export interface TicketSigner {
  /** The public key clients verify tickets with (raw, base64url). */
  readonly publicKey: string;
  /**
   * A ticket for `user` to fetch `infoHash` in `group`, valid for the lifetime from its
   * signing: signed now, or for the same claims a moment ago (tracker/ticket_cache.ts). The
   * caller has checked that `user` is a member of `group`.
   */
  issue(claims: TicketRequest): string;
  /** `user` left `group`: no ticket signed before now is handed out to them there again. */
  revoked(user: string, group: string): void;
}

/** Where the signing key is kept between runs (the tracker's settings table). */
export interface KeyStorage {
  setting(key: string): Promise<Uint8Array | undefined>;
  putSetting(key: string, value: Uint8Array): Promise<void>;
  /** Stores `value` unless one is there; returns what is stored (tracker/store.ts). */
  claimSetting(key: string, value: Uint8Array): Promise<Uint8Array>;
}

const TICKET_KEY_SETTING = "ticket_signing_key_pkcs8";

/**
 * The tracker's ticket signer, with the key it made on first start: a stable key means
 * clients logged in before a restart can still check tickets issued after it.
 */
export async function loadTicketSigner(
  storage: KeyStorage,
  options: {
    now?: () => number;
    /** How long a ticket is valid: 1 ms to `TICKET_LIFETIME_MS` (the default). */
    lifetimeMs?: number;
    /**
     * How long after signing a ticket is handed out again for the same claims: default
     * `ticketReuseMs(lifetimeMs)` (a tenth of the lifetime, at most a minute); 0 signs every
     * one.
     */
    reuseMs?: number;
  } = {},
): Promise<TicketSigner> {
  const now = options.now ?? Date.now;
  const lifetimeMs = options.lifetimeMs ?? TICKET_LIFETIME_MS;
  if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs < 1 || lifetimeMs > TICKET_LIFETIME_MS) {
    throw new RangeError(
      `ticket lifetime ${lifetimeMs} ms is not between 1 and ${TICKET_LIFETIME_MS} ms`,
    );
  }
  let stored = await storage.setting(TICKET_KEY_SETTING);
  if (!stored) {
    // instances starting together on one empty database each offer a key: the first written
    // is the one every instance signs with
    const made = await generateTicketKeys();
    stored = await storage.claimSetting(
      TICKET_KEY_SETTING,
      new Uint8Array(await crypto.subtle.exportKey("pkcs8", made.privateKey)),
    );
  }
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    new Uint8Array(stored),
    "Ed25519",
    true,
    ["sign"],
  );
  // the public half is derived from the private key's JWK (d holds the seed, x the public key)
  const { x } = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x },
    "Ed25519",
    true,
    ["verify"],
  );
  const publicKeyText = await exportPublicKey(publicKey);
  const signingKey = ticketSigningKey(
    new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey)),
  );
  const cache = new TicketCache({
    now,
    reuseMs: Math.min(options.reuseMs ?? lifetimeMs, ticketReuseMs(lifetimeMs)),
    sign: (claims) => {
      const issuedAt = now();
      const ticket = signTicketNow(
        { ...claims, issuedAt, expiresAt: issuedAt + lifetimeMs },
        signingKey,
      );
      return { ticket, issuedAt };
    },
  });
  return {
    publicKey: publicKeyText,
    issue: (claims) => cache.issue(claims),
    revoked: (user, group) => cache.revoked(user, group),
  };
}
