/**
 * The client program: binds the peer port and serves pieces on it, connects the session to
 * the tracker, and runs the shell until its input ends.
 *
 * @module
 */

import { errorMessage } from "../lib/errors.ts";
import { acceptPeer } from "./connection.ts";
import { ClientSession } from "./session.ts";
import { Shell } from "./shell.ts";

/** Where the client listens and which tracker it uses. */
export interface ClientOptions {
  host: string;
  port: number;
  trackerHost: string;
  trackerPort: number;
  json: boolean;
  /** How long a download waits for a missing piece before failing. */
  stallTimeoutMs?: number;
  /** Upload limit in KiB per second. */
  uploadLimitKib?: number;
}

/** Runs the client until its shell ends; resolves with the exit code. */
export async function runClient(options: ClientOptions): Promise<number> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: options.host, port: options.port });
  } catch (error) {
    console.error(
      `error: cannot serve peers on ${options.host}:${options.port}: ${errorMessage(error)}`,
    );
    return 1;
  }
  const interactive = Deno.stdin.isTerminal();
  // The session announces through the shell, and the shell runs the session's commands.
  const session = new ClientSession({
    hostname: options.trackerHost,
    port: options.trackerPort,
    peer: { host: options.host, port: listener.addr.port },
    onEvent: (event) => shell.announce(event),
    stallTimeoutMs: options.stallTimeoutMs,
    uploadBytesPerSecond: options.uploadLimitKib ? options.uploadLimitKib * 1024 : undefined,
  });
  const serving = servePeers(listener, session);
  const shell = new Shell({ session, json: options.json, interactive });
  if (interactive) {
    console.error(
      `swarmshare client: serving peers on ${options.host}:${listener.addr.port}, ` +
        `tracker ${options.trackerHost}:${options.trackerPort}; type help for commands`,
    );
  }

  const stop = () => Deno.stdin.close();
  Deno.addSignalListener("SIGTERM", stop);
  session.start();
  try {
    await shell.run();
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    await session.close();
    listener.close();
    await serving;
  }
  return 0;
}

/** Accepts peer connections, each served on its own. */
async function servePeers(listener: Deno.TcpListener, session: ClientSession): Promise<void> {
  const connections = new Set<Promise<void>>();
  try {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      const served = acceptPeer(conn, session.registry, session.peerContext)
        .finally(() => connections.delete(served));
      connections.add(served);
    }
  } catch {
    // the listener was closed
  }
  await Promise.allSettled(connections);
}
