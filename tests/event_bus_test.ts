/**
 * The bound on messages between tracker instances (tracker/postgres_events.ts): an event
 * naming thousands of users travels in parts, each message under `MAX_PAYLOAD_BYTES`
 * (PostgreSQL refuses 8000 bytes), no user lost or told twice, the holders told once.
 */

import assert from "node:assert/strict";
import { chunkByBytes, type TrackerEvent } from "../tracker/event_bus.ts";
import { MAX_PAYLOAD_BYTES, splitEvent } from "../tracker/postgres_events.ts";

/** The message an event becomes, as the bus sends it. */
function message(event: TrackerEvent): number {
  const from = crypto.randomUUID();
  return new TextEncoder().encode(JSON.stringify({ from, event })).length;
}

Deno.test("events between instances: long lists travel in parts under the limit", async (t) => {
  // the longest ids there are (64 characters), and a file name of 255 bytes of control
  // characters, each escaped to 6 in JSON
  const members = Array.from({ length: 5_000 }, (_, i) => `u${i}`.padEnd(64, "x"));
  const group = "g".repeat(64);

  await t.step("a revocation naming 5,000 members", () => {
    const parts = splitEvent({ kind: "revoke", user: members[0], group, members, at: 1 });
    assert.ok(parts.length > 40, `${parts.length} parts`);
    for (const part of parts) assert.ok(message(part) <= MAX_PAYLOAD_BYTES, `${message(part)}`);
    const told = parts.flatMap((part) => part.kind === "revoke" ? part.members : []);
    assert.deepEqual(told, members);
    // only part 0 reaches the holders and the leaver's own clients
    assert.deepEqual(parts.map((part) => part.kind === "revoke" && part.part), [
      ...parts.keys(),
    ]);
  });

  await t.step("a new file for 5,000 members, with the longest name", () => {
    const name = "\u0001".repeat(255);
    const parts = splitEvent({
      kind: "notice",
      users: members,
      except: members[1],
      notice: { push: "file_shared", group, name, size: 2 ** 40, user: members[1] },
    });
    for (const part of parts) assert.ok(message(part) <= MAX_PAYLOAD_BYTES, `${message(part)}`);
    assert.deepEqual(parts.flatMap((part) => part.kind === "notice" ? part.users : []), members);
  });

  await t.step("short events go whole", () => {
    assert.equal(splitEvent({ kind: "session_ended", digest: "d".repeat(64) }).length, 1);
    assert.deepEqual(chunkByBytes([], 100, 10), [[]]);
    assert.deepEqual(chunkByBytes(["a", "b", "c"], 10, 0), [["a", "b"], ["c"]]);
  });
});
