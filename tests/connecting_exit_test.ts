/**
 * A client whose input ends (or says `quit`) while it is still connecting to the tracker
 * exits at once: the connection under way is given up, not waited out. A "tracker" here
 * accepts TCP and never answers, so the client's TLS handshake hangs until it gives up.
 */

import assert from "node:assert/strict";
import { Program, within } from "../scripts/processes.ts";

/** Accepts connections and never sends a byte; says when one arrives and when it is closed. */
class SilentTracker implements Disposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns: Deno.Conn[] = [];
  readonly accepted = Promise.withResolvers<void>();
  /** Resolves when the first connection's other end closed it. */
  readonly closed = Promise.withResolvers<void>();

  constructor() {
    this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#conns.push(conn);
        this.accepted.resolve();
        this.#drain(conn);
      }
    } catch {
      // closed
    }
  }

  async #drain(conn: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(4096);
    try {
      while (await conn.read(buffer) !== null) {
        // the client's hello: never answered
      }
    } catch {
      // reset by the client
    }
    this.closed.resolve();
  }

  [Symbol.dispose](): void {
    this.#listener.close();
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // closed by the client
      }
    }
  }
}

/** Far below the handshake's own 10 s limit (and the tracker's 45 s idle timeout). */
const PROMPT_EXIT_MS = 5_000;

Deno.test("a client still connecting to the tracker exits at once when told to", async (t) => {
  for (const [what, input] of [["end of input", ""], ["quit", "quit\n"]] as const) {
    await t.step(what, async () => {
      using tracker = new SilentTracker();
      await using client = new Program(
        ["client", "127.0.0.1", "0", "127.0.0.1", String(tracker.port)],
        { stdin: true },
      );
      // the client is mid-handshake with a tracker that will never answer
      await within(tracker.accepted.promise, "the client to connect");
      if (input) await client.write(input);
      await client.endInput();
      // the tracker sees the connection given up, long before any timeout of the client's
      await within(tracker.closed.promise, "the client to close its connection", PROMPT_EXIT_MS);
      const status = await within(client.status, "the client to exit", PROMPT_EXIT_MS);
      assert.equal(status.code, 0);
      await client.exited();
      // stopping is no failure to report
      assert.deepEqual(client.stderr.all.filter((line) => line.startsWith("error")), []);
    });
  }
});
