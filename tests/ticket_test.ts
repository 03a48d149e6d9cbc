import assert from "node:assert/strict";
import {
  exportPublicKey,
  generateTicketKeys,
  importPublicKey,
  signTicket,
  TicketError,
  verifyTicket,
} from "../lib/ticket.ts";

const HASH = "ab".repeat(20);

Deno.test("tickets: a signed ticket verifies and says who, where and what", async () => {
  const keys = await generateTicketKeys();
  const claims = { user: "alice", group: "films", infoHash: HASH, expiresAt: Date.now() + 60_000 };
  const ticket = await signTicket(claims, keys.privateKey);
  const publicKey = await importPublicKey(await exportPublicKey(keys.publicKey));
  assert.deepEqual(await verifyTicket(ticket, publicKey, { infoHash: HASH }), claims);
});

Deno.test("tickets: everything else is refused", async (t) => {
  const keys = await generateTicketKeys();
  const other = await generateTicketKeys();
  const claims = { user: "alice", group: "films", infoHash: HASH, expiresAt: Date.now() + 60_000 };
  const ticket = await signTicket(claims, keys.privateKey);
  const [body, signature] = ticket.split(".");
  const forgedBody = new TextEncoder().encode(JSON.stringify({ ...claims, user: "mallory" }))
    .toBase64({ alphabet: "base64url", omitPadding: true });
  const flipped = signature.slice(0, -2) + (signature.at(-2) === "A" ? "B" : "A") +
    signature.at(-1);
  const cases: [string, string, CryptoKey, Record<string, unknown>][] = [
    ["claims changed", `${forgedBody}.${signature}`, keys.publicKey, { infoHash: HASH }],
    ["signature changed", `${body}.${flipped}`, keys.publicKey, { infoHash: HASH }],
    ["another tracker's key", ticket, other.publicKey, { infoHash: HASH }],
    ["another file", ticket, keys.publicKey, { infoHash: "cd".repeat(20) }],
    ["expired", ticket, keys.publicKey, { infoHash: HASH, now: Date.now() + 3_600_000 }],
    ["no signature", body, keys.publicKey, { infoHash: HASH }],
    ["three parts", `${ticket}.x`, keys.publicKey, { infoHash: HASH }],
    ["not base64", "!!!.???", keys.publicKey, { infoHash: HASH }],
    ["too long", "a".repeat(5000), keys.publicKey, { infoHash: HASH }],
    ["empty", "", keys.publicKey, { infoHash: HASH }],
  ];
  for (const [name, text, key, expected] of cases) {
    await t.step(name, async () => {
      await assert.rejects(
        verifyTicket(text, key, expected as { infoHash: string; now?: number }),
        TicketError,
      );
    });
  }
  await assert.rejects(importPublicKey("not a key"));
});
