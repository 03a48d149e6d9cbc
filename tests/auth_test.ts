import assert from "node:assert/strict";
import { hashPassword, newSessionToken, tokenDigest, verifyPassword } from "../tracker/auth.ts";

Deno.test("auth: salted scrypt hashes verify only the right password", async () => {
  const hash = await hashPassword("pässword ✓");
  assert.match(hash, /^scrypt\$32768\$8\$1\$/);
  assert.ok(!hash.includes("pässword"));
  assert.ok(await verifyPassword(hash, "pässword ✓"));
  assert.ok(!await verifyPassword(hash, "password ✓"));
  assert.ok(!await verifyPassword(hash, ""));
  assert.notEqual(await hashPassword("same"), await hashPassword("same"));
});

Deno.test("auth: malformed stored hashes never verify", async () => {
  for (
    const stored of [
      "",
      "plain",
      "scrypt$1$2$3",
      "bcrypt$a$b$c$d$e",
      "scrypt$x$8$1$AAAA$AAAA",
      "scrypt$1024$8$1$AAAA$",
    ]
  ) {
    assert.ok(!await verifyPassword(stored, "anything"), stored);
  }
});

Deno.test("auth: session tokens are random and stored only as digests", () => {
  const a = newSessionToken();
  const b = newSessionToken();
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.match(tokenDigest(a), /^[0-9a-f]{64}$/);
  assert.equal(tokenDigest(a), tokenDigest(a));
  assert.notEqual(tokenDigest(a), tokenDigest(b));
});
