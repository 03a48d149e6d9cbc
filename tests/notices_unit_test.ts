/**
 * Unit tests of notices: the tracker's per-connection bound (a burst, then counts by kind and
 * group when the window ends, held back while the writer is backed up), the sentences a
 * person reads, and a client link that refuses a malformed notice with one warning and keeps
 * taking good ones.
 */

import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder } from "../lib/frame.ts";
import { type NoticePush, parsePush, PROTOCOL_VERSION, type Push } from "../lib/protocol.ts";
import { noticeEvent } from "../peer/session.ts";
import { describeEvent, Shell } from "../peer/shell.ts";
import type { ClientSession } from "../peer/session.ts";
import { TrackerLink } from "../peer/tracker_link.ts";
import { NoticeGate, type PushSink } from "../tracker/notices.ts";

/** A writer that keeps what it is given and says when the next push arrives. */
class Sink implements PushSink {
  readonly pushes: Push[] = [];
  queuedPushes = 0;
  open = true;
  #waiter?: PromiseWithResolvers<void>;

  push(push: Push): boolean {
    if (!this.open) return false;
    this.pushes.push(push);
    this.#waiter?.resolve();
    return true;
  }

  /** Resolves at the next push. */
  next(): Promise<void> {
    this.#waiter = Promise.withResolvers<void>();
    return this.#waiter.promise;
  }
}

const file = (group: string, n: number): Exclude<NoticePush, { push: "more_notices" }> => ({
  push: "file_shared",
  group,
  name: `f${n}.bin`,
  size: n,
  user: "bob",
});

Deno.test("NoticeGate: a burst, then counts by kind and group when the window ends", async (t) => {
  await t.step("the burst goes out at once, the rest is counted", async () => {
    const sink = new Sink();
    const gate = new NoticeGate(sink, { burst: 3, windowMs: 30 });
    try {
      const outcomes = [];
      for (let n = 0; n < 10; n++) outcomes.push(gate.offer(file("films", n)));
      outcomes.push(gate.offer({ push: "join_requested", group: "films", user: "carol" }));
      outcomes.push(gate.offer(file("music", 99)));
      assert.deepEqual(outcomes, [
        "sent",
        "sent",
        "sent",
        ...Array(9).fill("held"),
      ]);
      assert.deepEqual(sink.pushes.map((p) => (p as { name: string }).name), [
        "f0.bin",
        "f1.bin",
        "f2.bin",
      ]);
      const flushed = sink.next();
      await flushed;
      assert.deepEqual(sink.pushes.slice(3), [
        { push: "more_notices", notice: "file_shared", count: 7, group: "films" },
        { push: "more_notices", notice: "join_requested", count: 1, group: "films" },
        { push: "more_notices", notice: "file_shared", count: 1, group: "music" },
      ]);
      for (const push of sink.pushes) assert.deepEqual(parsePush({ ...push }), push);
      // the counts took the new window's burst: the next notice is counted again
      assert.equal(gate.offer(file("films", 50)), "held");
    } finally {
      gate.close();
    }
  });

  await t.step("past maxHeldGroups, groups are counted per kind alone", async () => {
    const sink = new Sink();
    const gate = new NoticeGate(sink, { burst: 0, windowMs: 20, maxHeldGroups: 2 });
    try {
      for (const group of ["a", "b", "c", "d", "a", "d"]) gate.offer(file(group, 1));
      const flushed = sink.next();
      await flushed;
      assert.deepEqual(sink.pushes, [
        { push: "more_notices", notice: "file_shared", count: 2, group: "a" },
        { push: "more_notices", notice: "file_shared", count: 1, group: "b" },
        { push: "more_notices", notice: "file_shared", count: 3 },
      ]);
    } finally {
      gate.close();
    }
  });

  await t.step("a backed-up writer gets no notices, only their count later", async () => {
    const sink = new Sink();
    sink.queuedPushes = 32;
    const gate = new NoticeGate(sink, { burst: 5, windowMs: 20, queueRoom: 32 });
    try {
      assert.equal(gate.offer(file("films", 1)), "held");
      assert.equal(gate.offer(file("films", 2)), "held");
      assert.deepEqual(sink.pushes, []);
      sink.queuedPushes = 0; // it reads again
      const flushed = sink.next();
      await flushed;
      assert.deepEqual(sink.pushes, [
        { push: "more_notices", notice: "file_shared", count: 2, group: "films" },
      ]);
    } finally {
      gate.close();
    }
  });

  await t.step("a client that takes no counts gets none; a closed gate sends nothing", () => {
    const sink = new Sink();
    const gate = new NoticeGate(sink, { burst: 1, windowMs: 60_000, summaries: false });
    assert.equal(gate.offer(file("films", 1)), "sent");
    assert.equal(gate.offer(file("films", 2)), "held");
    gate.close(); // clears the window's timer: the test's sanitizer would see it otherwise
    assert.equal(gate.offer(file("films", 3)), "dropped");
    assert.equal(sink.pushes.length, 1);
  });
});

Deno.test("notices read as sentences", () => {
  const said = (push: NoticePush) => describeEvent(noticeEvent(push));
  assert.equal(
    said({ push: "join_requested", group: "films", user: "alice" }),
    `alice wants to join group "films": accept_request films alice`,
  );
  assert.equal(
    said({ push: "join_accepted", group: "films" }),
    `your request to join group "films" was accepted: you are a member now`,
  );
  assert.equal(
    said({ push: "join_rejected", group: "films" }),
    `your request to join group "films" was turned down by its owner`,
  );
  assert.equal(
    said({ push: "file_shared", group: "films", name: "my notes.txt", size: 4096, user: "bob" }),
    `new file in group "films": "my notes.txt" (4.0 KiB) from bob`,
  );
  assert.equal(
    said({ push: "more_notices", notice: "file_shared", group: "films", count: 37 }),
    `and 37 more new files in group "films": list_files films`,
  );
  assert.equal(
    said({ push: "more_notices", notice: "file_shared", count: 1 }),
    `and 1 more new file in several groups`,
  );
  assert.equal(
    said({ push: "more_notices", notice: "join_requested", group: "films", count: 4 }),
    `and 4 more requests to join group "films": requests list_requests films`,
  );
  assert.equal(
    said({ push: "more_notices", notice: "join_accepted", group: "films", count: 1 }),
    `and 1 more of your requests to join accepted: group "films"`,
  );
  assert.deepEqual(
    noticeEvent({ push: "more_notices", notice: "join_accepted", count: 2 }),
    { event: "more_notices", notice: "join_accepted", group: null, count: 2 },
  );
  assert.deepEqual(
    noticeEvent({ push: "file_shared", group: "g", name: "n", size: 1, user: "u" }),
    { event: "file_shared", group: "g", name: "n", size: 1, user: "u" },
  );
});

Deno.test("a notice's names reach the terminal escaped, in both modes", () => {
  // parsePush refuses such a name; the printing does not rely on it
  const event = noticeEvent({
    push: "file_shared",
    group: "films",
    name: "gnp\u202e.exe\x1b[2J",
    size: 1,
    user: "eve",
  });
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    for (const json of [false, true]) {
      new Shell({ session: {} as ClientSession, json, interactive: false }).announce(event);
    }
  } finally {
    console.log = log;
  }
  assert.equal(printed[0], `new file in group "films": "gnp\\u202e.exe\\u001b[2J" (1 B) from eve`);
  assert.deepEqual(JSON.parse(printed[1]), event);
  for (const line of printed) {
    assert.ok(!line.includes("\x1b") && !line.includes("\u202e"), line);
  }
});

Deno.test("a malformed notice is refused with one warning; the link lives on", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tracker = (async () => {
    const conn = await listener.accept();
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(4096);
    let hello: Record<string, unknown> | undefined;
    while (!hello) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("the client went away before its hello");
      decoder.push(buffer.subarray(0, n));
      hello = decoder.next() ?? undefined;
    }
    const send = (frame: unknown) => conn.write(encodeFrame(frame));
    await send({
      id: hello.id,
      ok: true,
      data: { version: PROTOCOL_VERSION, server: "fake", idle_timeout_ms: 60_000 },
    });
    // hostile: an escape sequence for a name, a kind it never asked for, an unknown field
    await send({ push: "file_shared", group: "films", name: "\x1b[2Jx", size: 1, user: "eve" });
    await send({ push: "file_shared", group: "films", name: "ok.bin", size: -1, user: "eve" });
    await send({ push: "join_accepted", group: "films", extra: true });
    await send({ push: "join_accepted", group: "films" });
    return { conn, pushes: (hello.pushes ?? []) as string[] };
  })();
  const logged: string[] = [];
  const got = Promise.withResolvers<Push>();
  const link = new TrackerLink({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    peer: { host: "127.0.0.1", port: 9 },
    security: { mode: "plaintext" },
    verifyTracker: () => {},
    onPush: (push) => got.resolve(push),
    log: (line) => logged.push(line),
  });
  link.start();
  try {
    assert.deepEqual(await got.promise, { push: "join_accepted", group: "films" });
    const { conn, pushes } = await tracker;
    conn.close();
    for (const kind of ["file_shared", "join_requested", "join_accepted", "more_notices"]) {
      assert.ok(pushes.includes(kind), `the hello did not ask for ${kind}`);
    }
    assert.equal(logged.length, 1, logged.join("\n"));
    assert.match(logged[0], /^tracker sent a malformed push \(push "file_shared" needs a valid/);
    assert.ok(!logged[0].includes("\x1b"), logged[0]);
  } finally {
    await link.close();
  }
});
