/**
 * Tickets kept for reuse (tracker/ticket_cache.ts): the same claims get the same ticket while
 * it is young, a new one once it is older than the bound, never one kept across a leave; the
 * count stays bounded. Through a real tracker: the same member and certificate get the same
 * ticket, another certificate its own, and a member who left and rejoined a ticket signed
 * after the revocation, which peers accept.
 */

import assert from "node:assert/strict";
import { generateIdentity, issueCertificate } from "../lib/identity.ts";
import { importPublicKey, TICKET_LIFETIME_MS, verifyTicket } from "../lib/ticket.ts";
import { loadTicketSigner } from "../tracker/auth.ts";
import {
  MAX_TICKET_REUSE_MS,
  type SignedTicket,
  TicketCache,
  type TicketRequest,
  ticketReuseMs,
} from "../tracker/ticket_cache.ts";
import { rawMember, rawTrackerLink, shareFileRequest } from "./raw_tls.ts";
import { TempDir, TrackerProcess } from "./harness.ts";

const HASH = "ab".repeat(20);

/** A cache over a counting signer and a clock the test moves. */
function cacheAt(options: { reuseMs: number; maxKept?: number }) {
  const clock = { now: 1_000_000 };
  const signed: TicketRequest[] = [];
  const cache = new TicketCache({
    ...options,
    now: () => clock.now,
    sign: (claims): SignedTicket => {
      signed.push(claims);
      return { ticket: `t${signed.length}`, issuedAt: clock.now };
    },
  });
  return { cache, clock, signed };
}

const bob = (infoHash = HASH, holder = "h1"): TicketRequest => ({
  user: "bob",
  group: "films",
  infoHash,
  holder,
});

Deno.test("ticket cache: reuse while young, per claims, dropped at a leave", async (t) => {
  await t.step("the same claims get the same ticket until the bound, then a new one", () => {
    const { cache, clock, signed } = cacheAt({ reuseMs: 60_000 });
    assert.equal(cache.issue(bob()), "t1");
    clock.now += 59_999;
    assert.equal(cache.issue(bob()), "t1");
    clock.now += 1;
    assert.equal(cache.issue(bob()), "t2");
    assert.equal(signed.length, 2);
    assert.equal(cache.size, 1);
  });

  await t.step("another file, certificate, user or group is another ticket", () => {
    const { cache } = cacheAt({ reuseMs: 60_000 });
    const tickets = [
      cache.issue(bob()),
      cache.issue(bob("cd".repeat(20))),
      cache.issue(bob(HASH, "h2")),
      cache.issue({ ...bob(), holder: undefined }),
      cache.issue({ ...bob(), user: "carol" }),
      cache.issue({ ...bob(), group: "music" }),
    ];
    assert.equal(new Set(tickets).size, tickets.length);
    // and each is kept on its own
    assert.equal(cache.issue(bob(HASH, "h2")), tickets[2]);
    assert.equal(cache.issue({ ...bob(), holder: undefined }), tickets[3]);
  });

  await t.step("a leave drops the user's tickets in that group only", () => {
    const { cache } = cacheAt({ reuseMs: 60_000 });
    const before = cache.issue(bob());
    const otherFile = cache.issue(bob("cd".repeat(20)));
    const elsewhere = cache.issue({ ...bob(), group: "music" });
    const carol = cache.issue({ ...bob(), user: "carol" });
    cache.revoked("bob", "films");
    assert.notEqual(cache.issue(bob()), before);
    assert.notEqual(cache.issue(bob("cd".repeat(20))), otherFile);
    assert.equal(cache.issue({ ...bob(), group: "music" }), elsewhere);
    assert.equal(cache.issue({ ...bob(), user: "carol" }), carol);
    cache.revoked("nobody", "films"); // nothing kept: nothing to do
  });

  await t.step("at most maxKept tickets, the oldest going first", () => {
    const { cache, clock, signed } = cacheAt({ reuseMs: 60_000, maxKept: 3 });
    for (let i = 0; i < 10; i++) {
      cache.issue(bob(String(i).repeat(40)));
      clock.now += 1;
      assert.ok(cache.size <= 3, `${cache.size} kept`);
    }
    cache.issue(bob("9".repeat(40)));
    assert.equal(signed.length, 10, "the newest is kept");
    cache.issue(bob("0".repeat(40)));
    assert.equal(signed.length, 11, "the oldest was dropped");
  });

  await t.step("tickets too old to hand out are dropped as new ones come", () => {
    const { cache, clock } = cacheAt({ reuseMs: 1_000 });
    for (let i = 0; i < 5; i++) cache.issue(bob(String(i).repeat(40)));
    clock.now += 1_000;
    cache.issue(bob("x".repeat(40)));
    assert.equal(cache.size, 1);
  });

  await t.step("only those too old go: the younger stay, and go when their time comes", () => {
    const { cache, clock, signed } = cacheAt({ reuseMs: 1_000 });
    for (let i = 0; i < 5; i++) cache.issue(bob(String(i).repeat(40)));
    clock.now += 500;
    for (let i = 5; i < 10; i++) cache.issue(bob(String(i).repeat(40)));
    clock.now += 500;
    cache.issue(bob("x".repeat(40)));
    assert.equal(cache.size, 6);
    cache.issue(bob("7".repeat(40)));
    assert.equal(signed.length, 11, "a younger one is handed out again");
    clock.now += 499;
    cache.issue(bob("y".repeat(40)));
    assert.equal(cache.size, 7);
    clock.now += 1;
    cache.issue(bob("z".repeat(40)));
    assert.equal(cache.size, 3, "x, y and z");
  });

  await t.step("reuse 0 signs every ticket and keeps none", () => {
    const { cache, signed } = cacheAt({ reuseMs: 0 });
    cache.issue(bob());
    cache.issue(bob());
    assert.equal(signed.length, 2);
    assert.equal(cache.size, 0);
  });

  await t.step("the bound: a tenth of the lifetime, at most a minute", () => {
    assert.equal(ticketReuseMs(TICKET_LIFETIME_MS), MAX_TICKET_REUSE_MS);
    assert.equal(MAX_TICKET_REUSE_MS * 10 <= TICKET_LIFETIME_MS, true);
    assert.equal(ticketReuseMs(3_000), 300);
    assert.equal(ticketReuseMs(5), 0);
  });
});

Deno.test("ticket signer: a kept ticket verifies, carries its signing time, goes at a leave", async () => {
  const settings = new Map<string, Uint8Array>();
  const storage = {
    setting: (key: string) => Promise.resolve(settings.get(key)),
    putSetting: (key: string, value: Uint8Array) => Promise.resolve(void settings.set(key, value)),
    claimSetting: (key: string, value: Uint8Array) => {
      if (!settings.has(key)) settings.set(key, value);
      return Promise.resolve(settings.get(key)!);
    },
  };
  let now = 5_000_000;
  const signer = await loadTicketSigner(storage, { now: () => now, lifetimeMs: 10_000 });
  const key = await importPublicKey(signer.publicKey);
  const first = signer.issue(bob());
  now += 999; // under a tenth of the lifetime
  assert.equal(signer.issue(bob()), first);
  const claims = await verifyTicket(first, key, { infoHash: HASH, holder: "h1", now });
  assert.equal(claims.issuedAt, 5_000_000);
  assert.equal(claims.expiresAt, 5_010_000);
  now += 1; // a tenth: signed anew
  const second = signer.issue(bob());
  assert.notEqual(second, first);
  assert.equal((await verifyTicket(second, key, { infoHash: HASH, now })).issuedAt, now);
  signer.revoked("bob", "films");
  now += 1; // signatures are deterministic: another moment, another ticket
  const third = signer.issue(bob());
  assert.notEqual(third, second);

  // a smaller reuse may be asked for, never a larger one than the bound
  const never = await loadTicketSigner(storage, { now: () => now, reuseMs: 0 });
  const once = never.issue(bob());
  now += 1;
  assert.notEqual(never.issue(bob()), once);
  const capped = await loadTicketSigner(storage, {
    now: () => now,
    lifetimeMs: 10_000,
    reuseMs: 60_000,
  });
  const kept = capped.issue(bob());
  now += 1_000;
  assert.notEqual(capped.issue(bob()), kept);
});

Deno.test("a real tracker hands a member the same ticket, and a new one after a rejoin", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const alice = await rawMember(tracker.port, "alice");
  const bob = await rawMember(tracker.port, "bob");
  // bob again, on a second device: a certificate of its own
  const device = await generateIdentity("bob's laptop");
  const serving = await issueCertificate(device, "bob", ["127.0.0.1"]);
  const laptop = await rawTrackerLink(tracker.port, device, {
    hello: { peer: { host: "127.0.0.1", port: 9 }, peer_cert: serving.certPem },
  });
  try {
    const login = await laptop.request({ type: "login", user: "bob", password: "pw-bob" });
    assert.equal(login.ok, true, JSON.stringify(login.error));
    const key = await importPublicKey((login.data as { ticket_key: string }).ticket_key);
    await alice.ok({ type: "create_group", group: "films" });
    await alice.ok(shareFileRequest("films", "a.mkv"));
    await bob.ok({ type: "join_group", group: "films" });
    await alice.ok({ type: "accept_request", group: "films", user: "bob" });
    const locate = { type: "locate_file", group: "films", name: "a.mkv" };
    const ticketOf = (data: unknown) => (data as { ticket: string }).ticket;

    const first = ticketOf(await bob.ok(locate));
    assert.equal(ticketOf(await bob.ok(locate)), first);
    const onLaptop = await laptop.request(locate);
    assert.equal(onLaptop.ok, true);
    const laptopTicket = ticketOf(onLaptop.data);
    assert.notEqual(laptopTicket, first, "another certificate, another ticket");
    const infoHash = (onLaptop.data as { info_hash: string }).info_hash;
    const device1 = await verifyTicket(laptopTicket, key, { infoHash });
    assert.equal(device1.holder, device.fingerprint);

    await bob.ok({ type: "leave_group", group: "films" });
    const refused = await laptop.request(locate);
    assert.equal(refused.ok, false, "no ticket, kept or not, for a former member");
    assert.equal((refused.error as { code: string }).code, "forbidden");
    const revoke = laptop.pushes.find((push) => push.push === "revoke");
    assert.ok(revoke, "the laptop heard of the leave");

    await bob.ok({ type: "join_group", group: "films" });
    await alice.ok({ type: "accept_request", group: "films", user: "bob" });
    const again = await laptop.request(locate);
    assert.equal(again.ok, true);
    const after = ticketOf(again.data);
    assert.notEqual(after, laptopTicket);
    // peers refuse tickets issued at or before the revocation: this one is newer
    const claims = await verifyTicket(after, key, { infoHash });
    assert.ok(claims.issuedAt! > (revoke.at as number), "signed after the revocation");
  } finally {
    alice.link.close();
    bob.link.close();
    laptop.close();
  }
});
