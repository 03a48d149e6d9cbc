/**
 * The tracker link's failover, against fake trackers on loopback (plaintext, no PostgreSQL):
 * an instance that goes away mid-request is left for the next at once, which is said once as
 * a switch; a request that changes nothing is asked again of the next, one that might have
 * been carried out is not; a single tracker behaves as before.
 */

import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder } from "../lib/frame.ts";
import { TrackerUnavailableError } from "../lib/errors.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import { type LinkStatus, TrackerLink } from "../peer/tracker_link.ts";
import { serveEach } from "./harness.ts";

type Frame = Record<string, unknown>;

/**
 * A fake tracker: greets every connection, then gives each request to `answer`, which returns
 * the reply's data, or `"drop"` to close the connection without a reply (an instance dying).
 */
class FakeTracker implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns = new Set<Deno.Conn>();
  readonly #serving: Promise<void>;
  /** Request types received, in order, over every connection. */
  readonly received: string[] = [];

  constructor(readonly answer: (request: Frame) => unknown | "drop") {
    this.#serving = serveEach(this.#listener, (conn) => this.#serve(conn));
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(16_384);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        decoder.push(buffer.subarray(0, n));
        for (let frame = decoder.next(); frame; frame = decoder.next()) {
          const request = frame as Frame;
          const type = String(request.type);
          this.received.push(type);
          const data = type === "hello"
            ? { version: PROTOCOL_VERSION, server: "fake", idle_timeout_ms: 60_000 }
            : this.answer(request);
          if (data === "drop") return;
          await conn.write(encodeFrame({ id: request.id, ok: true, data }));
        }
      }
    } catch {
      // the link went away
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  }

  /** Stops accepting and closes every connection (as a killed process's kernel does). */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // closed already
    }
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
    await this.#serving;
  }
}

/** A link to `seed` (and `alternates`), its statuses kept in order. */
function linkTo(seed: FakeTracker, alternates: FakeTracker[] = []) {
  const statuses: LinkStatus[] = [];
  const next = { wake: Promise.withResolvers<void>() };
  const link = new TrackerLink({
    hostname: "127.0.0.1",
    port: seed.port,
    alternates: alternates.map((tracker) => ({ hostname: "127.0.0.1", port: tracker.port })),
    peer: { host: "127.0.0.1", port: 9 },
    security: { mode: "plaintext" },
    verifyTracker: () => {},
    log: () => {},
    onStatus: (status) => {
      statuses.push(status);
      next.wake.resolve();
    },
    backoffMs: { initial: 10, max: 40 },
  });
  /** Waits for a status of `state`, taking it from those kept. */
  const status = async (state: LinkStatus["state"]): Promise<LinkStatus> => {
    while (true) {
      const index = statuses.findIndex((status) => status.state === state);
      if (index >= 0) return statuses.splice(index, 1)[0];
      next.wake = Promise.withResolvers<void>();
      await next.wake.promise;
    }
  };
  link.start();
  return { link, statuses, status };
}

Deno.test("tracker link failover", async (t) => {
  await t.step("a read-only request the first dies on is answered by the second", async () => {
    await using second = new FakeTracker((request) =>
      request.type === "list_groups" ? [{ group: "from-second", owner: "o", members: 1 }] : null
    );
    await using first = new FakeTracker((request) =>
      request.type === "list_groups" ? "drop" : null
    );
    const { link, status, statuses } = linkTo(first, [second]);
    try {
      const reply = await link.request("list_groups", {});
      assert.deepEqual(reply, [{ group: "from-second", owner: "o", members: 1 }]);
      const switched = await status("switched");
      assert.deepEqual(switched, {
        state: "switched",
        from: `127.0.0.1:${first.port}`,
        to: `127.0.0.1:${second.port}`,
        reason: "the tracker closed the connection",
      });
      assert.deepEqual(first.received, ["hello", "list_groups"]);
      assert.deepEqual(second.received, ["hello", "list_groups"]);
      assert.ok(!statuses.some((status) => status.state === "down"), "no outage said");
    } finally {
      await link.close();
    }
  });

  await t.step("a request that may have been carried out is not sent again", async () => {
    await using second = new FakeTracker((request) => request.type === "list_requests" ? [] : null);
    await using first = new FakeTracker((request) =>
      request.type === "create_group" ? "drop" : null
    );
    const { link, status } = linkTo(first, [second]);
    try {
      await assert.rejects(
        link.request("create_group", { group: "films" }),
        (error) =>
          error instanceof TrackerUnavailableError && /connection .* was lost/.test(error.message),
      );
      await status("switched");
      assert.deepEqual(second.received, ["hello"], "never asked of the second");
      // the next command goes to the second without anything typed
      assert.deepEqual(await link.request("list_requests", { group: "films" }), []);
    } finally {
      await link.close();
    }
  });

  await t.step("one tracker: a request it dies on fails, and the outage is said", async () => {
    await using only = new FakeTracker((request) => request.type === "list_groups" ? "drop" : null);
    const { link, status } = linkTo(only);
    try {
      await assert.rejects(link.request("list_groups", {}), TrackerUnavailableError);
      const down = await status("down");
      assert.equal(down.state === "down" && down.address, `127.0.0.1:${only.port}`);
    } finally {
      await link.close();
    }
  });

  await t.step("both gone: the outage is said once, naming both", async () => {
    const second = new FakeTracker(() => null);
    const first = new FakeTracker(() => null);
    const { link, status, statuses } = linkTo(first, [second]);
    try {
      await link.request("ping", {});
      await first[Symbol.asyncDispose]();
      await second[Symbol.asyncDispose]();
      const down = await status("down");
      assert.deepEqual(down.state === "down" && down.trying, [
        `127.0.0.1:${first.port}`,
        `127.0.0.1:${second.port}`,
      ]);
      await assert.rejects(link.request("list_groups", {}), TrackerUnavailableError);
      assert.ok(!statuses.some((status) => status.state === "down"), "said once");
    } finally {
      await link.close();
    }
  });
});
