/**
 * The tracker link's probe of a quiet tracker, against fake trackers over TLS on loopback: a
 * fresh connection that answers counts only when it presents the certificate the link's own
 * connection was accepted with. So an attacker on the path who blackholes the link's
 * connection and answers the probes itself does not keep the client waiting on a "busy"
 * tracker; a busy tracker that is who it must be still is waited on.
 */

import assert from "node:assert/strict";
import { TrackerUnavailableError } from "../lib/errors.ts";
import { encodeFrame, readFrames } from "../lib/frame.ts";
import { generateIdentity, type Identity } from "../lib/identity.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import {
  type AcceptedConn,
  type ConnListener,
  IdentityError,
  listen,
  readableOf,
} from "../lib/transport.ts";
import { TrackerLink } from "../peer/tracker_link.ts";
import { serveEach } from "./harness.ts";
import { RecordingRelay } from "./relay.ts";

/**
 * A tracker over TLS presenting `identity` that greets every connection's hello and answers
 * nothing else: the link's requests wait for ever (a tracker busy on them, or a connection
 * blackholed), while a probe's hello on a fresh connection is answered at once.
 */
class Greeter implements AsyncDisposable {
  readonly #listener: ConnListener;
  readonly #conns = new Set<AcceptedConn>();
  readonly #serving: Promise<void>;
  #onHello = () => {};
  /** Hellos answered so far, over every connection. */
  hellos = 0;

  private constructor(listener: ConnListener) {
    this.#listener = listener;
    this.#serving = serveEach(this.#listener, (conn) => this.#serve(conn));
  }

  static async start(identity: Identity): Promise<Greeter> {
    return new Greeter(
      await listen({
        hostname: "127.0.0.1",
        port: 0,
        security: { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
      }),
    );
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Resolves once `count` hellos have been answered. */
  async untilHellos(count: number): Promise<void> {
    while (this.hellos < count) {
      await new Promise<void>((resolve) => this.#onHello = resolve);
    }
  }

  async #serve(conn: AcceptedConn): Promise<void> {
    this.#conns.add(conn);
    try {
      for await (const frame of readFrames(readableOf(conn))) {
        if (frame.type !== "hello") continue;
        await writeAll(
          conn,
          encodeFrame({
            id: frame.id,
            ok: true,
            data: { version: PROTOCOL_VERSION, server: "fake", idle_timeout_ms: 60_000 },
          }),
        );
        this.hellos++;
        this.#onHello();
      }
    } catch {
      // the link went away
    } finally {
      this.#conns.delete(conn);
      closeQuietly(conn);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) closeQuietly(conn);
    await this.#serving;
  }
}

/**
 * A link over TLS to 127.0.0.1:`port` that accepts only `pinned` (as a client with the
 * tracker pinned does), probing after 100 ms of quiet. `checked` keeps every fingerprint its
 * `verifyTracker` was asked about; `left` resolves when the first connection (or attempt)
 * ends, with why and what had been checked by then.
 */
async function pinnedLink(port: number, pinned: Identity) {
  const client = await generateIdentity("swarmshare test client");
  const checked: string[] = [];
  const up = Promise.withResolvers<void>();
  const refused = Promise.withResolvers<string>();
  const left = Promise.withResolvers<{ reason: string; checked: string[] }>();
  const link = new TrackerLink({
    hostname: "127.0.0.1",
    port,
    peer: { host: "127.0.0.1", port: 9 },
    security: { mode: "tls", certPem: client.certPem, keyPem: client.keyPem },
    verifyTracker: (fingerprint) => {
      checked.push(fingerprint);
      if (fingerprint !== pinned.fingerprint) {
        throw new IdentityError(`the tracker presented ${fingerprint}, not the one pinned`);
      }
    },
    log: () => {},
    onStatus: (status) => {
      if (status.state === "up") up.resolve();
      if (status.state === "refused") refused.resolve(status.reason);
    },
    onRetry: ({ reason }) => left.resolve({ reason, checked: [...checked] }),
    probeAfterMs: 100,
    // generous, so that a probe refused is never confused with one that timed out: the
    // fakes answer at once
    probeTimeoutMs: 3_000,
    // without the check the link would wait this long on a "busy" impostor
    requestTimeoutMs: 6_000,
    backoffMs: { initial: 10, max: 100 },
  });
  link.start();
  return { link, checked, up: up.promise, refused: refused.promise, left: left.promise };
}

Deno.test("tracker link probe checks the tracker's certificate", async (t) => {
  const tracker = await generateIdentity("swarmshare tracker", ["127.0.0.1"]);

  await t.step(
    "an impostor answering the probes on the path: the quiet connection is left",
    async () => {
      const impostorIdentity = await generateIdentity("swarmshare impostor", ["127.0.0.1"]);
      await using real = await Greeter.start(tracker);
      await using impostor = await Greeter.start(impostorIdentity);
      // the attacker's path: the link's connection reaches the real tracker, and is then
      // blackholed (nothing after the hello comes back); every new connection reaches the
      // impostor
      await using path = RecordingRelay.start({
        target: { hostname: "127.0.0.1", port: real.port },
      });
      const { link, left, up, refused } = await pinnedLink(path.port, tracker);
      try {
        await up;
        path.target = { hostname: "127.0.0.1", port: impostor.port };
        // held as it settles, so a failure shows as the assertion below
        const asked = link.request("list_groups", {}).catch((error: unknown) => error);
        const { reason, checked } = await left;
        assert.match(reason, /stopped answering.*another certificate/);
        assert.ok(await asked instanceof TrackerUnavailableError);
        // the probe asked nothing of the client's verifier (which may pin or announce)
        assert.deepEqual(checked, [tracker.fingerprint]);
        // nothing was sent to the impostor: refused before its hello
        assert.equal(impostor.hellos, 0);
        // connecting again, the link's own check meets the impostor and refuses it
        assert.match(await refused, /not the one pinned/);
      } finally {
        await link.close();
      }
    },
  );

  await t.step("a busy tracker with its own certificate is waited on", async () => {
    await using real = await Greeter.start(tracker);
    const { link, checked, up, left } = await pinnedLink(real.port, tracker);
    try {
      await up;
      const asked = link.request("list_groups", {}).catch((error: unknown) => error);
      // the link's hello, then two probes answered (at 100 ms of quiet, then 200 ms more)
      const leftBecause = await Promise.race([
        real.untilHellos(3).then(() => undefined),
        left.then(({ reason }) => reason),
      ]);
      assert.equal(leftBecause, undefined, "the connection was kept");
      assert.deepEqual(checked, [tracker.fingerprint], "probes do not call the verifier");
      await link.close();
      assert.ok(await asked instanceof TrackerUnavailableError);
    } finally {
      await link.close();
    }
  });
});
