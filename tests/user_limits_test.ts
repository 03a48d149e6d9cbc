/**
 * What one user may have at once (issue 13, part 7): groups owned, requests to join waiting,
 * files shared per group. One account cannot grow every listing without bound.
 */

import assert from "node:assert/strict";
import { LIMITS } from "../tracker/account_handlers.ts";
import type { HandlerContext } from "../tracker/context.ts";
import { MAX_SHARES_PER_MEMBER } from "../tracker/file_handlers.ts";
import { handleRequest } from "../tracker/handlers.ts";
import { ClientEvents } from "../tracker/events.ts";
import { Presence } from "../tracker/presence.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { storeKinds } from "./store_backends.ts";

function as(store: TrackerStore, user: string): HandlerContext {
  const presence = new Presence();
  return {
    store,
    connection: { id: 1, user, peer: { host: "127.0.0.1", port: 1 } },
    presence,
    events: new ClientEvents({ presence }),
    // no tickets are asked for here; a leave drops those kept
    tickets: { revoked() {} },
  } as unknown as HandlerContext;
}

const run = (context: HandlerContext, request: Record<string, unknown>) =>
  Promise.resolve().then(() => handleRequest(context, request as never));

for (const kind of storeKinds()) {
  Deno.test({
    name:
      `per-user limits on ${kind.name}: groups owned, requests waiting, files shared in a group`,
    ignore: kind.unavailable !== undefined,
    fn: async (t) => {
      await using backend = await kind.start();
      await limits(t, await backend.open("limits"));
    },
  });
}

async function limits(t: Deno.TestContext, store: TrackerStore): Promise<void> {
  try {
    for (const user of ["mallory", "alice"]) await store.createUser(user, "hash");
    const mallory = as(store, "mallory");

    await t.step(`at most ${LIMITS.groupsOwned} groups owned`, async () => {
      for (let i = 0; i < LIMITS.groupsOwned; i++) {
        await run(mallory, { type: "create_group", group: `g${i}` });
      }
      await assert.rejects(
        run(mallory, { type: "create_group", group: "one-more" }),
        /the most one user may/,
      );
      await run(mallory, { type: "leave_group", group: "g0" });
      await run(mallory, { type: "create_group", group: "one-more" });
    });

    await t.step(`at most ${LIMITS.pendingRequests} requests to join waiting`, async () => {
      const alice = as(store, "alice");
      for (let i = 0; i <= LIMITS.pendingRequests; i++) {
        await run(alice, { type: "create_group", group: `a${i}` }).catch(() => {});
      }
      // alice owns 100 groups (the 101st was refused): mallory asks to join them all
      for (let i = 0; i < LIMITS.pendingRequests; i++) {
        await run(mallory, { type: "join_group", group: `a${i}` });
      }
      await store.createUser("bob", "hash");
      await run(as(store, "bob"), { type: "create_group", group: "bobs" });
      await assert.rejects(
        run(mallory, { type: "join_group", group: "bobs" }),
        /requests to join waiting, the most one user may/,
      );
    });

    await t.step(`at most ${MAX_SHARES_PER_MEMBER} files shared per member and group`, async () => {
      const group = "g1";
      for (let i = 0; i < MAX_SHARES_PER_MEMBER; i++) {
        const name = `f${i}`;
        await store.shareFile({
          group,
          name,
          infoHash: i.toString(16).padStart(40, "0"),
          size: 1,
          sha1: "0".repeat(40),
          info: new Uint8Array(1),
        }, { user: "mallory", path: `/x/${name}`, mtimeMs: 1 });
      }
      const share = (name: string) =>
        run(mallory, {
          type: "share_file",
          group,
          name,
          size: 1,
          sha1: "0".repeat(40),
          info: "AA==",
          path: `/x/${name}`,
          mtime_ms: 1,
        });
      await assert.rejects(share("one-more"), /the most one\s+member may/);
      // sharing again one already shared is not a new share: refused for another reason
      await assert.rejects(share("f1"), (error: Error) => !/the most one/.test(error.message));
    });
  } finally {
    await store.close();
  }
}
