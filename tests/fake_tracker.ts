/**
 * A tracker that does not keep the rules, for tests of what a client does with a broken or
 * hostile one: plaintext, it logs anyone in and answers each request from a table the test
 * gives (anything, well formed or not), and can push frames once a client has logged in.
 * The client is the real program.
 *
 * @module
 */

import { encodeFrame, FrameDecoder } from "../lib/frame.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import { exportPublicKey, generateTicketKeys } from "../lib/ticket.ts";

/** What the fake answers to a request: `data` of an ok reply, or a whole frame to send as is. */
export type FakeAnswer = { data: unknown } | { frame: Record<string, unknown> };

/** A reply for each request type; the rest get the defaults (a login that works, then null). */
export type FakeAnswers = Record<string, (request: Record<string, unknown>) => FakeAnswer>;

export interface FakeTracker extends AsyncDisposable {
  port: number;
  /** Resolves at the first login's `my_shares` with a function that pushes frames to it. */
  loggedIn: Promise<(frames: unknown[]) => Promise<void>>;
  /** Request types received, in order. */
  received: string[];
}

/** Starts a fake tracker on 127.0.0.1 (a free port) answering from `answers`. */
export async function startFakeTracker(answers: FakeAnswers = {}): Promise<FakeTracker> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ticketKey = await exportPublicKey((await generateTicketKeys()).publicKey);
  const loggedIn = Promise.withResolvers<(frames: unknown[]) => Promise<void>>();
  const received: string[] = [];
  const defaults: FakeAnswers = {
    hello: () => ({
      data: { version: PROTOCOL_VERSION, server: "fake", idle_timeout_ms: 60_000 },
    }),
    login: (request) => ({
      data: { user: request.user, token: "t".repeat(43), ticket_key: ticketKey },
    }),
    // every list is empty
    my_shares: () => ({ data: [] }),
    list_groups: () => ({ data: [] }),
    list_files: () => ({ data: [] }),
    list_requests: () => ({ data: [] }),
    list_sessions: () => ({ data: [] }),
  };
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    const send = async (frame: unknown) => {
      const bytes = encodeFrame(frame);
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    };
    const decoder = new FrameDecoder();
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        decoder.push(buffer.subarray(0, n));
        for (let frame = decoder.next(); frame; frame = decoder.next()) {
          const type = String(frame.type);
          received.push(type);
          const answer = (answers[type] ?? defaults[type])?.(frame) ?? { data: null };
          await send(
            "frame" in answer ? answer.frame : { id: frame.id, ok: true, data: answer.data },
          );
          if (type === "my_shares") {
            loggedIn.resolve(async (frames) => {
              for (const push of frames) await send(push);
            });
          }
        }
      }
    } catch {
      // the client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  };
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        served.push(serve(conn));
      }
    } catch {
      // the listener was closed
    }
    await Promise.all(served);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    loggedIn: loggedIn.promise,
    received,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await accepting;
    },
  };
}
