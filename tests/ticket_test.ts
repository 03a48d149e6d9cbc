/**
 * Unit tests of lib/ticket.ts: tickets signed by the tracker verify, and every way a ticket
 * can be wrong (tampered, another key, another file, expired, malformed, too long) is refused.
 */

import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import {
  exportPublicKey,
  generateTicketKeys,
  importPublicKey,
  signTicket,
  type TicketClaims,
  TicketError,
  ticketLifetimeMs,
  verifyTicket,
} from "../lib/ticket.ts";

const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;
const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const INFO_HASH = "7353b5c237721f4b197d66cc82e01503e08aae94";
const OTHER_HASH = "e1234792619d8a1bc9fd3b2ba71e3ebd37f67ba3";
const NOW = 1_700_000_000_000;

const claims: TicketClaims = {
  user: "alice",
  group: "movies",
  infoHash: INFO_HASH,
  expiresAt: NOW + 10 * 60_000,
};

async function refused(
  ticket: string,
  publicKey: CryptoKey,
  message: RegExp,
  expected: { infoHash: string; now?: number } = { infoHash: INFO_HASH, now: NOW },
): Promise<void> {
  await assert.rejects(verifyTicket(ticket, publicKey, expected), (error: unknown) => {
    assert.ok(error instanceof TicketError, `expected TicketError, got ${error}`);
    assert.ok(error instanceof ProtocolError, "a TicketError is a ProtocolError");
    assert.match(error.message, message);
    return true;
  });
}

/** `ticket` with its body replaced by other claims, keeping the old signature. */
function withBody(ticket: string, body: unknown): string {
  const encoded = new TextEncoder().encode(JSON.stringify(body)).toBase64(BASE64URL);
  return `${encoded}.${ticket.split(".")[1]}`;
}

Deno.test("tickets", async (t) => {
  const keys = await generateTicketKeys();
  const otherKeys = await generateTicketKeys();
  const ticket = await signTicket(claims, keys.privateKey);

  await t.step("the format is base64url(JSON).base64url(64-byte signature)", () => {
    const [body, signature, ...rest] = ticket.split(".");
    assert.deepEqual(rest, []);
    assert.match(body, /^[A-Za-z0-9_-]+$/);
    assert.match(signature, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(body, BASE64URL))),
      claims,
    );
    assert.equal(Uint8Array.fromBase64(signature, BASE64URL).length, 64);
  });

  await t.step("a signed ticket verifies and yields its claims", async () => {
    assert.deepEqual(
      await verifyTicket(ticket, keys.publicKey, { infoHash: INFO_HASH, now: NOW }),
      claims,
    );
  });

  await t.step("it verifies with the public key as exported to clients", async () => {
    const text = await exportPublicKey(keys.publicKey);
    assert.match(text, /^[A-Za-z0-9_-]{43}$/);
    const imported = await importPublicKey(text);
    assert.deepEqual(
      await verifyTicket(ticket, imported, { infoHash: INFO_HASH, now: NOW }),
      claims,
    );
  });

  await t.step("without `now` the real clock is used", async () => {
    const fresh = { ...claims, expiresAt: Date.now() + 60_000 };
    const current = await signTicket(fresh, keys.privateKey);
    assert.deepEqual(await verifyTicket(current, keys.publicKey, { infoHash: INFO_HASH }), fresh);
    const old = await signTicket({ ...claims, expiresAt: Date.now() - 3_600_000 }, keys.privateKey);
    await refused(old, keys.publicKey, /expired/, { infoHash: INFO_HASH });
  });

  await t.step("a tampered body is refused", async () => {
    await refused(withBody(ticket, { ...claims, group: "admins" }), keys.publicKey, /signature/);
    await refused(withBody(ticket, { ...claims, user: "mallory" }), keys.publicKey, /signature/);
    await refused(
      withBody(ticket, { ...claims, expiresAt: claims.expiresAt + 1 }),
      keys.publicKey,
      /signature/,
    );
    // the same JSON with a space added: different bytes, so a different signature
    const spaced = new TextEncoder().encode(JSON.stringify(claims, null, 1)).toBase64(BASE64URL);
    await refused(`${spaced}.${ticket.split(".")[1]}`, keys.publicKey, /signature/);
  });

  await t.step("a tampered signature is refused", async () => {
    const [body, signature] = ticket.split(".");
    const bytes = Uint8Array.fromBase64(signature, BASE64URL);
    for (const at of [0, 31, 63]) {
      const flipped = bytes.slice();
      flipped[at] ^= 0x01;
      await refused(`${body}.${flipped.toBase64(BASE64URL)}`, keys.publicKey, /signature/);
    }
    await refused(
      `${body}.${bytes.subarray(0, 63).toBase64(BASE64URL)}`,
      keys.publicKey,
      /signature/,
    );
    await refused(`${body}.${new Uint8Array(64).toBase64(BASE64URL)}`, keys.publicKey, /signature/);
  });

  await t.step("a signature is accepted in one spelling only", async () => {
    // found by the property ticket.mutated: base64 decoding skips blanks and padding and
    // ignores the 4 spare bits of the last character, so these decoded to the same signature
    // and verified: 16 spellings of the last character and any blank anywhere
    const [body, signature] = ticket.split(".");
    const last = BASE64URL_ALPHABET.indexOf(signature.at(-1)!);
    const spareBits = BASE64URL_ALPHABET[last ^ 0b0101];
    const variants = [
      `${signature.slice(0, -1)}${spareBits}`,
      `${signature.slice(0, 10)} ${signature.slice(10)}`,
      `${signature}\n`,
      `${signature}==`,
    ];
    for (const variant of variants) {
      assert.deepEqual(
        Uint8Array.fromBase64(variant, BASE64URL),
        Uint8Array.fromBase64(signature, BASE64URL),
      );
      await refused(`${body}.${variant}`, keys.publicKey, /malformed/);
    }
  });

  await t.step("another tracker's key does not verify it", async () => {
    await refused(ticket, otherKeys.publicKey, /signature/);
    const forged = await signTicket(claims, otherKeys.privateKey);
    await refused(forged, keys.publicKey, /signature/);
  });

  await t.step("a ticket for another file is refused", async () => {
    await refused(ticket, keys.publicKey, /another file/, { infoHash: OTHER_HASH, now: NOW });
    await refused(ticket, keys.publicKey, /another file/, {
      infoHash: INFO_HASH.toUpperCase(),
      now: NOW,
    });
  });

  await t.step("expiry, with a minute of allowed clock skew", async () => {
    const at = (now: number) => ({ infoHash: INFO_HASH, now });
    const { expiresAt } = claims;
    assert.ok(await verifyTicket(ticket, keys.publicKey, at(expiresAt)));
    assert.ok(await verifyTicket(ticket, keys.publicKey, at(expiresAt + 60_000)));
    await refused(ticket, keys.publicKey, /expired/, at(expiresAt + 60_001));
    await refused(ticket, keys.publicKey, /expired/, at(expiresAt + 365 * 24 * 3_600_000));
    await refused(ticket, keys.publicKey, /expired/, at(8.64e15));
  });

  await t.step("malformed strings are refused", async () => {
    const [body, signature] = ticket.split(".");
    const cases: [string, string][] = [
      ["empty", ""],
      ["no dot", body],
      ["a lone dot", "."],
      ["no body", `.${signature}`],
      ["no signature", `${body}.`],
      ["three parts", `${ticket}.${signature}`],
      ["a trailing dot", `${ticket}.`],
      ["not base64url", `${body}.!!!!`],
      ["standard base64 characters", `${body.replace(/./, "+")}.${signature}`],
      [
        "a body that is not JSON",
        `${new TextEncoder().encode("hello").toBase64(BASE64URL)}.${signature}`,
      ],
      ["whitespace", ` ${ticket}`],
    ];
    for (const [name, text] of cases) {
      await assert.rejects(
        verifyTicket(text, keys.publicKey, { infoHash: INFO_HASH, now: NOW }),
        TicketError,
        name,
      );
    }
  });

  await t.step("signed claims of the wrong shape are refused", async () => {
    const bad: unknown[] = [
      null,
      42,
      "alice",
      [],
      { ...claims, user: 7 },
      { ...claims, group: undefined },
      { ...claims, infoHash: null },
      { ...claims, expiresAt: String(claims.expiresAt) },
    ];
    for (const value of bad) {
      const signed = await signTicket(value as TicketClaims, keys.privateKey);
      await refused(signed, keys.publicKey, /claims are malformed/);
    }
  });

  await t.step("a ticket over 2048 characters is refused before any crypto", async () => {
    await refused("a".repeat(2049), keys.publicKey, /too long/);
    const long = await signTicket({ ...claims, user: "u".repeat(1600) }, keys.privateKey);
    assert.ok(long.length > 2048);
    await refused(long, keys.publicKey, /too long/);
    // a long but acceptable one still verifies
    const fits = await signTicket({ ...claims, user: "u".repeat(1000) }, keys.privateKey);
    assert.ok(fits.length <= 2048);
    assert.equal(
      (await verifyTicket(fits, keys.publicKey, { infoHash: INFO_HASH, now: NOW })).user.length,
      1000,
    );
  });
});

Deno.test("importPublicKey refuses what is not an Ed25519 public key", async (t) => {
  const cases: [string, string][] = [
    ["empty", ""],
    ["garbage", "not a key!"],
    ["31 bytes", new Uint8Array(31).fill(1).toBase64(BASE64URL)],
    ["33 bytes", new Uint8Array(33).fill(1).toBase64(BASE64URL)],
  ];
  for (const [name, text] of cases) {
    await t.step(name, async () => {
      await assert.rejects(importPublicKey(text), ProtocolError);
    });
  }
});

Deno.test("issuedAt, the grace past expiry, and reading a ticket's lifetime", async () => {
  const { privateKey, publicKey } = await generateTicketKeys();
  const stamped = await signTicket({ ...claims, issuedAt: NOW - 1_000 }, privateKey);
  const verified = await verifyTicket(stamped, publicKey, { infoHash: INFO_HASH, now: NOW });
  assert.equal(verified.issuedAt, NOW - 1_000);
  assert.equal(ticketLifetimeMs(stamped), claims.expiresAt - NOW + 1_000);
  for (const issuedAt of [1.5, "1", claims.expiresAt + 1]) {
    const bad = await signTicket({ ...claims, issuedAt } as unknown as TicketClaims, privateKey);
    await refused(bad, publicKey, /malformed/);
  }
  // honoured 60 s past expiry by default, not a moment with no grace
  const late = { infoHash: INFO_HASH, now: claims.expiresAt + 1 };
  await verifyTicket(stamped, publicKey, late);
  await assert.rejects(verifyTicket(stamped, publicKey, { ...late, skewMs: 0 }), /expired/);
  for (const garbage of ["", ".", "x.y", "a".repeat(5000), await signTicket(claims, privateKey)]) {
    assert.equal(ticketLifetimeMs(garbage), undefined, garbage.slice(0, 20));
  }
});
