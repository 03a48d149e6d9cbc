/**
 * Credentials on the tracker: salted scrypt password hashes compared in constant time, and
 * session tokens of which only a SHA-256 digest is stored. Nothing here logs a secret.
 *
 * @module
 */

import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

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
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, toBase64(salt), toBase64(key)].join("$");
}

/** True when `password` matches the stored hash; false for any malformed stored value. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = fromBase64(parts[4]);
  const expected = fromBase64(parts[5]);
  if (![N, r, p].every(Number.isSafeInteger) || expected.length === 0) return false;
  const actual = await deriveKey(password, salt, { N, r, p, keyLength: expected.length });
  return timingSafeEqual(actual, expected);
}

/**
 * A hash of a random password, verified against when the user does not exist, so that an
 * unknown user takes as long to refuse as a wrong password.
 */
export function makeDecoyHash(): Promise<string> {
  return hashPassword(toBase64(randomBytes(16)));
}

/** A new session token: 32 random bytes, base64url. Only the client ever holds it in clear. */
export function newSessionToken(): string {
  return randomBytes(32).toString("base64url");
}

/** The digest under which a session token is stored and looked up. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}
