/**
 * The tracker under restarts and hostile connections: state survives, clients resume on
 * their own, and garbage, oversized or silent connections never stop it serving others.
 */

import { generateIdentity, type Identity, issueCertificate } from "../lib/identity.ts";
import assert from "node:assert/strict";
import { encodeFrame, readFrames } from "../lib/frame.ts";
import { writeAll } from "../lib/io.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import {
  freePort,
  JsonShell,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  usersInGroup,
  within,
  writeRandomFile,
} from "./harness.ts";
import { readableOf } from "../lib/transport.ts";
import { connectRawTls } from "./raw_tls.ts";

Deno.test("tracker restart: groups intact, logged-in clients resume without a new login", async () => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  let tracker = await TrackerProcess.start(dbPath);
  const port = tracker.port;
  const [alice, bob] = await usersInGroup(port, ["alice", "bob"], "films");
  await using _alice = alice;
  await using _bob = bob;
  await using carol = JsonShell.start(port);
  try {
    await bob.ok("join_group films");
    await alice.ok("accept_request films bob");
    await carol.ok("create_user carol pw");
    await carol.ok("login carol pw");
    await carol.ok("join_group films");

    const status = await tracker.stop();
    assert.equal(status.code, 0, "SIGTERM stops the tracker cleanly");
    for (const shell of [alice, bob]) await shell.event("tracker_disconnected");
    assert.match(await alice.fails("list_groups"), /tracker is unreachable/);

    tracker = await TrackerProcess.start(dbPath, { port });
    assert.deepEqual(await alice.event("tracker_reconnected"), {
      event: "tracker_reconnected",
      user: "alice",
    });
    assert.deepEqual(await bob.event("tracker_reconnected"), {
      event: "tracker_reconnected",
      user: "bob",
    });
    assert.deepEqual(await bob.ok("list_groups"), [{ group: "films", owner: "alice", members: 2 }]);
    assert.deepEqual(await alice.ok("requests list_requests films"), [{ user: "carol" }]);
    await alice.ok("accept_request films carol");
    // the disconnect was announced once, not once per reconnection attempt
    assert.equal(alice.events.filter((e) => e.event === "tracker_disconnected").length, 0);
  } finally {
    await tracker[Symbol.asyncDispose]();
  }
});

Deno.test(
  "a download completed while the tracker is away is shared at the next login, even when its client stopped before the tracker came back",
  async () => {
    // found by `deno task chaos --seed 13 --seconds 10 --clients 4 --files 2 --size 1
    // --kill-every 1.5 --upload-limit-kib 256`: the tracker never heard of the share, and the
    // client kept it only in memory
    await using dir = await TempDir.create();
    const dbPath = dir.join("tracker.db");
    let tracker = await TrackerProcess.start(dbPath);
    const port = tracker.port;
    const client = (name: string, extraArgs: string[] = []) =>
      JsonShell.start(port, {
        cwd: dir.path,
        peerPort: freePort(),
        stateHome: dir.join(`${name}-state`),
        extraArgs,
      });
    try {
      // the seeder serves slowly, so the download is still running when the tracker goes
      await using seeder = client("seeder", ["--upload-limit-kib", "512"]);
      await seeder.ok("create_user seeder pw");
      await seeder.ok("login seeder pw");
      await seeder.ok("create_group films");
      const sha1 = await writeRandomFile(dir.join("film.bin"), 2 << 20);
      await seeder.ok(`upload_file ${dir.join("film.bin")} films`);
      await Deno.mkdir(dir.join("downloads"));
      {
        await using viewer = client("viewer");
        await viewer.ok("create_user viewer pw");
        await viewer.ok("login viewer pw");
        await viewer.ok("join_group films");
        await seeder.ok("accept_request films viewer");
        await viewer.ok(`download_file films film.bin ${dir.join("downloads")}`);
        await tracker.stop();
        const [running] = await viewer.ok("show_downloads") as { state: string }[];
        assert.equal(running.state, "D", "the download must end while the tracker is away");
        const done = await viewer.event("download_complete");
        assert.equal(await sha1OfFile(String(done.path)), sha1);
        assert.equal((await viewer.quit()).code, 0);
      }
      const pendingDir = dir.join("viewer-state/swarmshare/pending_shares");
      const pending = async () => (await Array.fromAsync(Deno.readDir(pendingDir))).length;
      assert.equal(await pending(), 1, "the share is kept in the state directory");
      tracker = await TrackerProcess.start(dbPath, { port });
      await seeder.event("tracker_reconnected");
      await using viewer = client("viewer");
      assert.deepEqual(await viewer.ok("login viewer pw"), {
        user: "viewer",
        shares_restored: 1,
      });
      assert.deepEqual(
        (await seeder.ok("list_files films") as { seeders: number }[]).map((f) => f.seeders),
        [2],
      );
      assert.equal(await pending(), 0, "kept only until the tracker has it");
    } finally {
      await tracker[Symbol.asyncDispose]();
    }
  },
);

Deno.test(
  "a login cut short by the tracker going away leaves the client logged out, and the next login serves every share",
  async () => {
    await using dir = await TempDir.create();
    const dbPath = dir.join("tracker.db");
    let tracker = await TrackerProcess.start(dbPath);
    const port = tracker.port;
    try {
      await using alice = JsonShell.start(port, { cwd: dir.path });
      await using watcher = JsonShell.start(port, { cwd: dir.path });
      await alice.ok("create_user alice pw");
      await alice.ok("login alice pw");
      await alice.ok("create_group films");
      // sparse: quick to make, and hashing it again at login takes long enough to kill the
      // tracker meanwhile
      const film = dir.join("film.bin");
      {
        using file = await Deno.open(film, { write: true, create: true });
        await file.truncate(512 << 20);
      }
      await alice.ok(`upload_file ${film} films`);
      await alice.ok("logout");
      // another client of alice's, to see when the tracker has made the next session
      await watcher.ok("login alice pw");
      await Deno.utime(film, new Date(), new Date(Date.now() + 5000));
      const sessions = async () => (await watcher.ok("list_sessions") as unknown[]).length;
      const before = await sessions();

      const login = alice.run("login alice pw");
      // the tracker has made the session: the reply is on its way, then the shares come back
      await within(
        (async () => {
          while (await sessions() === before) {
            // paces the polling of a state; it stands in for no event
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
        })(),
        "the login to reach the tracker",
      );
      tracker.kill("SIGKILL");
      await tracker.exited();
      assert.equal((await watcher.quit()).code, 0);
      const reply = await login;
      assert.equal(reply.ok, false, "a login whose shares did not all come back failed");
      assert.match(String(reply.error), /tracker/);
      assert.deepEqual(
        alice.events.filter((event) => event.event === "share_dropped"),
        [],
        "a tracker away is no reason to drop a share",
      );

      tracker = await TrackerProcess.start(dbPath, { port });
      assert.deepEqual(await alice.event("tracker_reconnected"), {
        event: "tracker_reconnected",
        user: null,
      });
      assert.deepEqual(await alice.ok("login alice pw"), { user: "alice", shares_restored: 1 });
      assert.deepEqual(
        (await alice.ok("list_files films") as { seeders: number }[]).map((f) => f.seeders),
        [1],
      );
    } finally {
      await tracker[Symbol.asyncDispose]();
    }
  },
);

Deno.test("a client started before its tracker connects when the tracker comes up", async () => {
  await using dir = await TempDir.create();
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await using shell = JsonShell.start(port);
  assert.match(await shell.fails("create_user early pw"), /tracker is unreachable/);
  await shell.event("tracker_disconnected");
  await using _tracker = await TrackerProcess.start(dir.join("tracker.db"), { port });
  assert.deepEqual(await shell.event("tracker_reconnected"), {
    event: "tracker_reconnected",
    user: null,
  });
  await shell.ok("create_user early pw");
});

/** A raw TCP connection to the tracker for sending whatever bytes a test likes. */
async function rawConnection(port: number, identity?: Identity) {
  const conn = await connectRawTls(port, identity);
  const frames = readFrames(readableOf(conn));
  return {
    conn,
    send: (bytes: Uint8Array) => writeAll(conn, bytes),
    request: async (message: Record<string, unknown>) => {
      await writeAll(conn, encodeFrame(message));
      const { value } = await within(frames.next(), "a reply frame");
      return value as Record<string, unknown> | undefined;
    },
    /** Resolves once the tracker has closed the connection (after any final frames). */
    closedByPeer: () =>
      within(
        (async () => {
          const seen: Record<string, unknown>[] = [];
          try {
            for await (const frame of frames) seen.push(frame);
          } catch {
            // a reset or a half frame still means it closed
          }
          return seen;
        })(),
        "the tracker to close the connection",
      ),
    [Symbol.dispose]: () => {
      try {
        conn.close();
      } catch {
        // closed by the tracker already
      }
    },
  };
}

Deno.test("hostile connections cost the tracker nothing", async (t) => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  await using witness = JsonShell.start(tracker.port);
  await witness.ok("create_user witness pw");
  await witness.ok("login witness pw");

  await t.step("a silent connection and a half-sent frame stall nobody", async () => {
    using _silent = await rawConnection(tracker.port);
    using half = await rawConnection(tracker.port);
    await half.send(new Uint8Array([0, 0, 0, 50, 0x7b]));
    await witness.ok("create_group during");
    assert.deepEqual(await witness.ok("list_groups"), [
      { group: "during", owner: "witness", members: 1 },
    ]);
  });

  await t.step("garbage bytes: connection closed, others unaffected", async () => {
    using garbage = await rawConnection(tracker.port);
    await garbage.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await garbage.closedByPeer();
    const random = await rawConnection(tracker.port);
    const noise = crypto.getRandomValues(new Uint8Array(4096));
    noise[0] = 0xff; // a length prefix far over the limit, so the outcome is certain
    await random.send(noise);
    await random.closedByPeer();
    random[Symbol.dispose]();
    await witness.ok("list_groups");
  });

  await t.step("an oversized frame is refused from its header alone", async () => {
    using big = await rawConnection(tracker.port);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 2 << 20);
    await big.send(header); // no body follows: the tracker must not wait for 2 MiB
    const replies = await big.closedByPeer();
    assert.equal(replies.length, 1);
    assert.match(String((replies[0].error as { message: string }).message), /exceeds/);
    await witness.ok("list_groups");
  });

  await t.step(
    "before a login a frame over 16 KiB is refused; after, a large one is read",
    async () => {
      using stranger = await rawConnection(tracker.port);
      const padding = "p".repeat(20 * 1024);
      await stranger.send(
        encodeFrame({ id: 1, type: "hello", version: PROTOCOL_VERSION, padding }),
      );
      const replies = await stranger.closedByPeer();
      assert.match(
        String((replies[0]?.error as { message: string }).message),
        /exceeds the 16384-byte limit/,
      );

      using member = await rawConnection(tracker.port);
      assert.equal(
        (await member.request({ id: 1, type: "hello", version: PROTOCOL_VERSION }))?.ok,
        true,
      );
      assert.equal(
        (await member.request({ id: 2, type: "create_user", user: "big_framer", password: "pw" }))
          ?.ok,
        true,
      );
      assert.equal(
        (await member.request({ id: 3, type: "login", user: "big_framer", password: "pw" }))?.ok,
        true,
      );
      // unknown fields are dropped, but the frame is read whole once logged in
      const reply = await member.request({ id: 4, type: "list_groups", padding });
      assert.equal(reply?.ok, true, JSON.stringify(reply?.error));
    },
  );

  await t.step("a body that is not JSON closes the connection", async () => {
    using bad = await rawConnection(tracker.port);
    const body = new TextEncoder().encode("{not json");
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    await bad.send(frame);
    await bad.closedByPeer();
  });

  await t.step("out of order: anything before hello is refused and closed", async () => {
    using early = await rawConnection(tracker.port);
    const reply = await early.request({ id: 7, type: "list_groups" });
    assert.deepEqual(reply, {
      id: 7,
      ok: false,
      error: { code: "bad_request", message: "the first request must be hello" },
    });
    await early.closedByPeer();
  });

  await t.step("another protocol version is refused", async () => {
    using old = await rawConnection(tracker.port);
    const reply = await old.request({ id: 1, type: "hello", version: PROTOCOL_VERSION + 1 });
    assert.equal((reply?.error as { code: string }).code, "unsupported_version");
    await old.closedByPeer();
  });

  await t.step("a serving peer's hello must carry a real certificate", async () => {
    const peer = { host: "127.0.0.1", port: 6881 };
    const pem = (body: string) =>
      `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["no certificate", {}, /must present its certificate/],
      ["not base64 inside", { peer_cert: pem("%%%%") }, /must present its certificate/],
      ["no PEM block", { peer_cert: "hello" }, /malformed field "peer_cert"/],
      ["oversized", { peer_cert: pem("A".repeat(9000)) }, /malformed field "peer_cert"/],
      ["base64 that is no certificate", { peer_cert: pem("AAAA") }, /must present its certif/],
      [
        "another key's certificate",
        { peer_cert: (await generateIdentity("someone else")).certPem },
        /not made with the key of this connection's certificate/,
      ],
    ];
    const me = await generateIdentity("swarmshare test client");
    for (const [what, extra, message] of cases) {
      using conn = await rawConnection(tracker.port, me);
      const reply = await conn.request({
        id: 1,
        type: "hello",
        version: PROTOCOL_VERSION,
        peer,
        ...extra,
      });
      assert.equal(reply?.ok, false, what);
      assert.match(String((reply?.error as { message: string }).message), message, what);
      await conn.closedByPeer();
    }
    // the control: a serving certificate made with this connection's key is taken
    using good = await rawConnection(tracker.port, me);
    const serving = await issueCertificate(me, "swarmshare peer", ["127.0.0.1"]);
    const reply = await good.request({
      id: 1,
      type: "hello",
      version: PROTOCOL_VERSION,
      peer,
      peer_cert: serving.certPem,
    });
    assert.equal(reply?.ok, true, JSON.stringify(reply));
  });

  await t.step("after hello, malformed requests get error replies on a live link", async () => {
    using link = await rawConnection(tracker.port);
    assert.equal(
      (await link.request({ id: 1, type: "hello", version: PROTOCOL_VERSION }))?.ok,
      true,
    );
    const unknown = await link.request({ id: 2, type: "drop_tables" });
    assert.match(String((unknown?.error as { message: string }).message), /unknown request type/);
    const missing = await link.request({ id: 3, type: "login", user: "witness" });
    assert.match(String((missing?.error as { message: string }).message), /password/);
    const again = await link.request({ id: 4, type: "hello", version: PROTOCOL_VERSION });
    assert.equal(again?.ok, false);
    const noId = await link.request({ type: "ping" });
    assert.equal(noId?.ok, false);
    assert.deepEqual(await link.request({ id: 5, type: "ping" }), { id: 5, ok: true, data: null });
    const denied = await link.request({ id: 6, type: "list_groups" });
    assert.equal((denied?.error as { code: string }).code, "unauthenticated");
    const forged = await link.request({ id: 8, type: "resume", token: "not-a-real-token" });
    assert.equal((forged?.error as { code: string }).code, "unauthenticated");
  });

  await witness.ok("list_groups");
});

Deno.test("a connection that stays silent past the idle timeout is closed", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: ["--idle-timeout-ms", "200"],
  });
  using silent = await rawConnection(tracker.port);
  assert.deepEqual(await silent.closedByPeer(), []);
});

Deno.test("a client's heartbeat keeps its idle link open past the idle timeout", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: ["--idle-timeout-ms", "300"],
  });
  await using shell = JsonShell.start(tracker.port);
  await shell.ok("create_user idle pw");
  await shell.ok("login idle pw");
  // opened after the client's last command, so it times out after the client would have
  using silent = await rawConnection(tracker.port);
  await silent.closedByPeer();
  await shell.ok("list_groups");
  assert.deepEqual(
    shell.events.map((event) => event.event),
    ["tracker_trusted"],
    "the client trusted the tracker on first contact and was never disconnected",
  );
});
