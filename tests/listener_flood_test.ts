/**
 * A flood of connections past the process's descriptor limit never stops a listener: the
 * tracker runs with `ulimit -n 256`, 400 idle connections come at once, and once they are
 * gone an honest client is served at once. Connections are capped below the limit
 * (lib/transport.ts `connectionCap`), so accept never meets EMFILE.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { generateIdentity } from "../lib/identity.ts";
import { type AcceptedConn, connectionCap, listen } from "../lib/transport.ts";
import { Program } from "../scripts/processes.ts";
import { TRACKER_RUNTIME_FLAGS } from "../scripts/runtime_flags.ts";
import { JsonShell, MAIN, TempDir } from "./harness.ts";

Deno.test("connectionCap: half the soft descriptor limit less a reserve, bounded", () => {
  const limits = (soft: string) =>
    `Limit                     Soft Limit           Hard Limit           Units\n` +
    `Max open files            ${soft}                 524288               files\n`;
  assert.equal(connectionCap(limits("256")), 64);
  assert.equal(connectionCap(limits("1024")), 448);
  assert.equal(connectionCap(limits("1048576")), 16_384);
  assert.equal(connectionCap(limits("unlimited")), 16_384);
  assert.equal(connectionCap(limits("100")), 1, "never below one");
  assert.equal(connectionCap("garbage"), 448, "unreadable: as for 1024");
});

Deno.test("a connection flood past the descriptor limit does not stop the tracker", async () => {
  await using dir = await TempDir.create();
  const command = [
    "ulimit -n 256 && exec",
    Deno.execPath(),
    "run",
    "-A",
    ...TRACKER_RUNTIME_FLAGS,
    MAIN,
  ]
    .join(" ");
  await using tracker = new Program([
    "-c",
    `${command} server 127.0.0.1 0 --db ${dir.join("tracker.db")}`,
  ], { executable: "bash" });
  const listening = await tracker.stdout.until(
    (line) => line.startsWith("tracker listening on "),
    "the tracker to listen",
  );
  const port = Number(listening.split(":").at(-1));

  const flood: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 400; i++) {
      flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
  } finally {
    for (const conn of flood) {
      try {
        conn.close();
      } catch {
        // closed by the tracker already
      }
    }
  }
  // an honest client, right after: it logs in although 400 connections came at once
  await using shell = JsonShell.start(port);
  await shell.ok("create_user honest pw");
  await shell.ok("login honest pw");
  assert.ok(!tracker.stderr.all.some((line) => /accept failed/.test(line)), "accept never failed");
});

Deno.test("one address holds at most its share of a listener; others still get in", async () => {
  const identity = await generateIdentity("listener test");
  const listener = await listen({
    hostname: "0.0.0.0",
    port: 0,
    security: { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
    maxConnectionsPerAddress: 3,
  });
  const accepted: AcceptedConn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  const port = listener.addr.port;
  const open: tls.TLSSocket[] = [];
  const connect = (localAddress: string) =>
    new Promise<"served" | "refused">((resolve) => {
      const tcp = net.connect({ host: "127.0.0.1", port, localAddress });
      const socket = tls.connect({
        socket: tcp,
        cert: identity.certPem,
        key: identity.keyPem,
        rejectUnauthorized: false,
      });
      open.push(socket);
      socket.once("secureConnect", () => resolve("served"));
      socket.once("error", () => resolve("refused"));
      socket.once("close", () => resolve("refused"));
    });
  try {
    const fromOne = [];
    for (let i = 0; i < 5; i++) fromOne.push(await connect("127.0.0.1"));
    assert.deepEqual(fromOne, ["served", "served", "served", "refused", "refused"]);
    assert.equal(await connect("127.0.0.2"), "served", "another address is not held back");
    // one of the first address's connections goes: it may connect again
    open[0].destroy();
    let again: string;
    do again = await connect("127.0.0.1"); while (again === "refused" && open.length < 50);
    assert.equal(again, "served");
  } finally {
    for (const socket of open) socket.destroy();
    listener.close();
    await accepting;
    for (const conn of accepted) conn.close();
  }
});

Deno.test("a connection its reader leaves unread holds back its sender (TLS too)", async () => {
  const identity = await generateIdentity("read-ahead test");
  const listener = await listen({
    hostname: "127.0.0.1",
    port: 0,
    security: { mode: "tls", certPem: identity.certPem, keyPem: identity.keyPem },
    readAheadBytes: 16 * 1024,
  });
  const accepted = (async () => {
    for await (const conn of listener) return conn;
  })();
  const socket = tls.connect({
    host: "127.0.0.1",
    port: listener.addr.port,
    cert: identity.certPem,
    key: identity.keyPem,
    rejectUnauthorized: false,
  });
  const total = 64 << 20;
  const chunk = new Uint8Array(64 * 1024);
  let written = 0;
  try {
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const conn = (await accepted)!;
    const sending = (async () => {
      while (written < total) {
        chunk.fill(written / chunk.length % 251);
        written += chunk.length;
        if (!socket.write(chunk)) await new Promise((resolve) => socket.once("drain", resolve));
      }
    })();
    // nothing reads the connection: the sender must come to a stop, far short of the end
    // (Deno's node:tls read on through a paused socket and took all 64 MiB)
    let last = -1;
    let still = 0;
    for (let tick = 0; tick < 400 && still < 10 && written < total; tick++) {
      // watches the sender's progress until it stops; no event says that it has
      await new Promise((resolve) => setTimeout(resolve, 50));
      still = written === last ? still + 1 : 0;
      last = written;
    }
    assert.ok(written < total / 2, `the listener took ${written >> 20} MiB unread`);
    // and it all comes through, in order, once read
    const into = new Uint8Array(chunk.length);
    for (let read = 0; read < total;) {
      let filled = 0;
      while (filled < into.length) {
        const count = await conn.read(into.subarray(filled));
        assert.notEqual(count, null, `the stream ended after ${read + filled} bytes`);
        filled += count!;
      }
      assert.ok(into.every((byte) => byte === read / chunk.length % 251), `bytes at ${read}`);
      read += filled;
    }
    await sending;
    conn.close();
  } finally {
    socket.destroy();
    listener.close();
  }
});
