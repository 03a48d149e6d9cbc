/**
 * Attacks on the links, through real processes on 127.0.0.1: an eavesdropper recording the
 * tracker link and the peer wire, a man in the middle on each with a certificate of its own,
 * a ticket replayed from another device, and restarts that must keep every identity. Each
 * attack has a control showing the same probe does see something when the defence is off.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type BDict, encode } from "../lib/bencode.ts";
import { encodeFrame, FrameDecoder } from "../lib/frame.ts";
import { generateIdentity, type Identity } from "../lib/identity.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import type { ByteConn } from "../lib/transport.ts";
import {
  encodeExtended,
  encodeHandshake,
  encodeRequest,
  encodeSimple,
  WireReader,
} from "../lib/wire.ts";
import { Program } from "../scripts/processes.ts";
import {
  type DownloadLine,
  freePort,
  type JsonReply,
  JsonShell,
  sha1OfFile,
  startSwarm,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./harness.ts";
import { connectRawTls } from "./raw_tls.ts";
import { fileChunksIn, RecordingRelay, TlsInterceptor } from "./relay.ts";

const MiB = 1 << 20;
const LOCALHOST = "127.0.0.1";

/** The fingerprint a tracker printed on the line after it listens: `SHA256:<hex>`. */
function fingerprintLine(tracker: TrackerProcess): string {
  const fingerprint = tracker.fingerprint ?? "";
  assert.match(fingerprint, /^SHA256:[0-9a-f]{64}$/);
  return fingerprint;
}

interface Completed extends JsonReply {
  path: string;
  sha1: string;
  peers: { peer: string; bytes: number; pieces: number }[];
}

const encoder = new TextEncoder();

/** Whether `needle` occurs in any of the recorded streams, byte for byte. */
function contains(streams: Uint8Array[], needle: string): boolean {
  const bytes = Buffer.from(encoder.encode(needle));
  return streams.some((stream) =>
    Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength).indexOf(bytes) >= 0
  );
}

/** How many of the file's 64-byte chunks appear in some recorded stream. */
function chunksSeen(file: Uint8Array, streams: Uint8Array[]): number {
  return new Set(streams.flatMap((stream) => fileChunksIn(file, stream))).size;
}

function totalBytes(streams: Uint8Array[]): number {
  return streams.reduce((sum, stream) => sum + stream.length, 0);
}

/**
 * A whole session with a recording relay on the tracker link (both clients dial the relay) and
 * one on the peer wire (the seeder advertises the relay's address): accounts, a group, an
 * upload and a download checked by SHA-1. Returns what the relays recorded.
 */
async function eavesdroppedSession(plaintext: boolean) {
  const insecure = plaintext ? ["--insecure-plaintext"] : [];
  const secrets = {
    seeder: "eve-target-seeder",
    downloader: "eve-target-leecher",
    group: "eve-target-group",
    password: "correct-horse-battery-staple-7f3a",
    file: "eve-target-file.bin",
  };
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
    extraArgs: insecure,
  });
  await using trackerRelay = RecordingRelay.start({
    target: { hostname: LOCALHOST, port: tracker.port },
  });
  const seederPort = freePort();
  await using peerRelay = RecordingRelay.start({
    target: { hostname: LOCALHOST, port: seederPort },
  });
  const seederHome = dir.join("seeder");
  const downloaderHome = dir.join("downloader");
  await Deno.mkdir(seederHome);
  await Deno.mkdir(downloaderHome);
  await using seeder = JsonShell.start(trackerRelay.port, {
    cwd: seederHome,
    peerPort: seederPort,
    extraArgs: [...insecure, "--public-addr", `${LOCALHOST}:${peerRelay.port}`],
  });
  await using downloader = JsonShell.start(trackerRelay.port, {
    cwd: downloaderHome,
    extraArgs: insecure,
  });

  const size = 2 * MiB;
  const sha1 = await writeRandomFile(`${seederHome}/${secrets.file}`, size);
  await seeder.ok(`create_user ${secrets.seeder} ${secrets.password}`);
  await seeder.ok(`login ${secrets.seeder} ${secrets.password}`);
  await downloader.ok(`create_user ${secrets.downloader} ${secrets.password}-2`);
  await downloader.ok(`login ${secrets.downloader} ${secrets.password}-2`);
  await seeder.ok(`create_group ${secrets.group}`);
  await downloader.ok(`join_group ${secrets.group}`);
  await seeder.ok(`accept_request ${secrets.group} ${secrets.downloader}`);
  await seeder.ok(`upload_file ${secrets.file} ${secrets.group}`);
  await downloader.ok(`download_file ${secrets.group} ${secrets.file} ${downloaderHome}`);
  const done = await downloader.event(
    "download_complete",
    (event) => event.name === secrets.file,
  ) as Completed;
  assert.equal(done.sha1, sha1);
  assert.equal(await sha1OfFile(done.path), sha1);
  // every byte of it came through the relay on the peer wire
  assert.deepEqual(
    done.peers.filter((peer) => peer.bytes > 0).map(({ peer, bytes }) => ({ peer, bytes })),
    [{ peer: `${LOCALHOST}:${peerRelay.port}`, bytes: size }],
  );
  await seeder.quit();
  await downloader.quit();
  assert.ok(!trackerRelay.overflowed && !peerRelay.overflowed, "the capture cap was hit");
  return {
    secrets,
    file: await Deno.readFile(`${seederHome}/${secrets.file}`),
    trackerCapture: trackerRelay.captured(),
    peerCapture: peerRelay.captured(),
  };
}

/** What an eavesdropper learned: each probe that matched, and the file chunks it saw. */
function whatLeaked(session: Awaited<ReturnType<typeof eavesdroppedSession>>) {
  const { secrets, file, trackerCapture, peerCapture } = session;
  const probes = [
    secrets.password,
    `"${secrets.seeder}"`,
    `"${secrets.downloader}"`,
    `"${secrets.group}"`,
    `"password"`,
    `"token"`,
    `"ticket"`,
    "ticket",
    "BitTorrent protocol",
  ];
  const leaked: string[] = [];
  for (const probe of probes) {
    if (contains(trackerCapture, probe)) leaked.push(`tracker link: ${probe}`);
    if (contains(peerCapture, probe)) leaked.push(`peer wire: ${probe}`);
  }
  return {
    leaked,
    trackerChunks: chunksSeen(file, trackerCapture),
    peerChunks: chunksSeen(file, peerCapture),
  };
}

Deno.test("an eavesdropper on both links learns no secret and no byte of the file", async (t) => {
  await t.step("TLS: nothing readable in either capture", async () => {
    const session = await eavesdroppedSession(false);
    // the relays did carry the session: the peer capture is at least the file's size
    const peerBytes = totalBytes(session.peerCapture);
    assert.ok(peerBytes >= session.file.length, `${peerBytes}`);
    assert.ok(totalBytes(session.trackerCapture) > 0);
    // an empty chunk list means no run of 127 bytes of the file appears in a capture
    assert.deepEqual(whatLeaked(session), { leaked: [], trackerChunks: 0, peerChunks: 0 });
  });

  await t.step("control, --insecure-plaintext: the same probes see it all", async () => {
    const session = await eavesdroppedSession(true);
    const { leaked, trackerChunks, peerChunks } = whatLeaked(session);
    for (
      const expected of [
        `tracker link: ${session.secrets.password}`,
        `tracker link: "password"`,
        `tracker link: "token"`,
        `tracker link: "ticket"`,
        `tracker link: "${session.secrets.group}"`,
        "peer wire: ticket",
        "peer wire: BitTorrent protocol",
      ]
    ) {
      assert.ok(leaked.includes(expected), `not seen: ${expected} (seen: ${leaked})`);
    }
    assert.equal(trackerChunks, 0);
    assert.equal(peerChunks, session.file.length / 64, "every chunk of the file in clear");
  });
});

/** A plain forwarding relay on `port` while `body` runs, so a client pins the real tracker. */
async function pinThroughRelay(
  port: number,
  trackerPort: number,
  stateHome: string,
  body: (shell: JsonShell) => Promise<void>,
): Promise<JsonReply> {
  await using relay = RecordingRelay.start({
    port,
    target: { hostname: LOCALHOST, port: trackerPort },
  });
  await using shell = JsonShell.start(relay.port, { stateHome });
  await body(shell);
  const trusted = await shell.event("tracker_trusted");
  assert.equal((await shell.quit()).code, 0);
  return trusted;
}

Deno.test("a man in the middle of the tracker link is refused before anything is sent", async (t) => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  let tracker = await TrackerProcess.start(dbPath);
  try {
    const real = fingerprintLine(tracker);
    // the address the client knows the tracker by; first a faithful relay, then the attacker
    const address = freePort();
    const pinnedHome = dir.join("pinned-state");
    await Deno.mkdir(pinnedHome);
    const trusted = await pinThroughRelay(address, tracker.port, pinnedHome, async (shell) => {
      await shell.ok("create_user victim victim-pw-9d2c");
      await shell.ok("login victim victim-pw-9d2c");
    });
    assert.equal(trusted.fingerprint, real);

    await using mitm = await TlsInterceptor.start({
      port: address,
      target: { hostname: LOCALHOST, port: tracker.port },
    });
    const fake = `SHA256:${mitm.identity.fingerprint}`;

    await t.step("a client that pinned the real tracker", async () => {
      await using shell = JsonShell.start(address, { stateHome: pinnedHome });
      const refused = await shell.event("tracker_refused");
      const reason = String(refused.reason);
      assert.ok(reason.includes(fake) && reason.includes(real), reason);
      assert.match(reason, /fingerprint/);
      const error = await shell.fails("login victim victim-pw-9d2c");
      assert.match(error, /fingerprint/);
      assert.ok(error.includes(fake), error);
      assert.ok(!shell.events.some((event) => event.event === "tracker_trusted"));
      assert.ok(mitm.connections >= 1, "the client never reached the interceptor");
      assert.equal(mitm.bytesFromClients, 0, "the client sent application data to it");
    });

    await t.step("a client given --tracker-fingerprint, with a fresh state dir", async () => {
      const before = mitm.connections;
      await using shell = JsonShell.start(address, { extraArgs: ["--tracker-fingerprint", real] });
      const refused = await shell.event("tracker_refused");
      const reason = String(refused.reason);
      assert.ok(reason.includes(fake) && reason.includes(real), reason);
      assert.match(reason, /--tracker-fingerprint/);
      assert.match(await shell.fails("login victim victim-pw-9d2c"), /fingerprint/);
      assert.ok(mitm.connections > before);
      assert.equal(mitm.bytesFromClients, 0);
    });

    await t.step("human mode says error: ... fingerprint", async () => {
      await using program = new Program(
        ["client", LOCALHOST, "0", LOCALHOST, String(address)],
        { stdin: true, stateHome: pinnedHome },
      );
      await program.write("login victim victim-pw-9d2c\n");
      await program.endInput();
      await program.exited();
      const errors = program.stdout.all.filter((line) => line.startsWith("error: "));
      assert.ok(errors.some((line) => line.includes("fingerprint")), program.stdout.all.join("\n"));
      assert.equal(mitm.bytesFromClients, 0);
    });

    await t.step("control: a client told to trust the interceptor is read by it", async () => {
      await using shell = JsonShell.start(address, { extraArgs: ["--tracker-fingerprint", fake] });
      // the interceptor reads the hello; the tracker then refuses it, because the serving
      // certificate in it is not made with the key of the certificate the relay presented
      assert.match(await shell.fails("login victim victim-pw-9d2c"), /tracker|connection/);
      assert.ok(mitm.textFromClients().includes('"type":"hello"'), "the interceptor read nothing");
      assert.ok(!mitm.textFromClients().includes("victim-pw-9d2c"), "no login went through it");
    });

    await t.step("a tracker restarted with a new identity is refused on reconnect", async () => {
      const home = dir.join("live-state");
      await Deno.mkdir(home);
      await using shell = JsonShell.start(tracker.port, { stateHome: home });
      await shell.ok("login victim victim-pw-9d2c");
      assert.equal((await shell.event("tracker_trusted")).fingerprint, real);
      const port = tracker.port;
      await tracker.stop();
      await shell.event("tracker_disconnected");
      tracker = await TrackerProcess.start(dir.join("other.db"), { port });
      const other = fingerprintLine(tracker);
      assert.notEqual(other, real);
      const refused = await shell.event(["tracker_refused", "tracker_reconnected"]);
      assert.equal(refused.event, "tracker_refused", JSON.stringify(refused));
      assert.ok(String(refused.reason).includes(other), String(refused.reason));
      assert.match(await shell.fails("list_groups"), /fingerprint/);
      assert.ok(!shell.events.some((event) => event.event === "tracker_trusted"));
    });
  } finally {
    await tracker[Symbol.asyncDispose]();
  }
});

Deno.test("a man in the middle of the peer wire gets no request and serves no piece", async () => {
  // He relays the tracker's check of the seeder's address untouched (so the tracker hands the
  // address out), then intercepts the downloader: a man on the downloader's path only.
  const seedPort = freePort();
  await using mitm = await TlsInterceptor.start({
    target: { hostname: LOCALHOST, port: seedPort },
    passThrough: true,
  });
  await using swarm = await startSwarm(["seed", "d"], {
    clientArgs: { seed: ["--public-addr", `${LOCALHOST}:${mitm.port}`] },
    peerPorts: { seed: seedPort },
  });
  await writeRandomFile(`${swarm.home("seed")}/f.bin`, MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  assert.ok(mitm.passedThrough >= 1, "the tracker's check did not come through the relay");
  mitm.passThrough = false;
  const d = swarm.shell("d");
  await d.ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}`);
  const refused = await d.event("peer_refused");
  assert.equal(refused.group, swarm.group);
  assert.equal(refused.name, "f.bin");
  assert.equal(refused.peer, `${LOCALHOST}:${mitm.port}`);
  assert.match(String(refused.reason), /fingerprint SHA256:[0-9a-f]{64}/);
  assert.match(String(refused.reason), /not who the tracker said/);
  const [line] = await d.ok("show_downloads") as DownloadLine[];
  assert.equal(line.pieces_done, 0);
  assert.ok(line.peers.every((peer) => peer.bytes === 0), JSON.stringify(line.peers));
  assert.ok(mitm.connections >= 1, "the downloader never dialled the interceptor");
  assert.equal(mitm.bytesFromClients, 0, "the downloader sent the interceptor data");
});

/** A tracker link spoken by hand with `identity`: hello, then requests one by one. */
class RawTrackerLink {
  readonly #decoder = new FrameDecoder();
  #nextId = 1;
  private constructor(readonly conn: ByteConn) {}

  static async open(port: number, identity: Identity): Promise<RawTrackerLink> {
    const link = new RawTrackerLink(await connectRawTls(port, identity));
    await link.request({ type: "hello", version: PROTOCOL_VERSION });
    return link;
  }

  /** Sends a request and returns the data of its successful reply. */
  async request(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    await this.conn.write(encodeFrame({ ...request, id }));
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next()) {
        if (frame.id !== id) continue; // pushed events
        assert.equal(frame.ok, true, `${request.type}: ${JSON.stringify(frame.error)}`);
        return frame.data as Record<string, unknown>;
      }
      const read = await within(this.conn.read(buffer), `the reply to ${request.type}`);
      if (read === null) throw new Error(`the tracker closed the link after ${request.type}`);
      this.#decoder.push(buffer.subarray(0, read));
    }
  }
}

Deno.test("a ticket replayed from another device fetches nothing", async (t) => {
  await using swarm = await startSwarm(["seed", "member"]);
  await writeRandomFile(`${swarm.home("seed")}/f.bin`, MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const port = swarm.shell("seed").peerPort;
  const deviceA = await generateIdentity("device A");
  const deviceB = await generateIdentity("device B");

  const link = await RawTrackerLink.open(swarm.tracker.port, deviceA);
  let ticket: string;
  let infoHash: Uint8Array;
  try {
    await link.request({ type: "login", user: "member", password: "pw-member" });
    const located = await link.request({ type: "locate_file", group: swarm.group, name: "f.bin" });
    ticket = String(located.ticket);
    infoHash = Uint8Array.fromHex(String(located.info_hash));
  } finally {
    link.conn.close();
  }

  /** Presents `ticket` from `device`; returns the messages seen until close or a piece. */
  const present = async (device: Identity): Promise<{ seen: string[]; closed: boolean }> => {
    const conn = await connectRawTls(port, device);
    const reader = new WireReader(conn);
    const seen: string[] = [];
    let closed = false;
    try {
      await conn.write(encodeHandshake(infoHash, new Uint8Array(20).fill(7)));
      await reader.readHandshake();
      const handshake = new Map<string, unknown>([
        ["m", new Map()],
        ["ticket", encoder.encode(ticket)],
      ]) as BDict;
      await conn.write(encodeExtended(0, encode(handshake)));
      await conn.write(encodeSimple("interested"));
      // no request before an unchoke: a too-early request is refused whatever the ticket
      await within(
        (async () => {
          try {
            for (let message = await reader.next(); message; message = await reader.next()) {
              seen.push(message.type);
              if (message.type === "unchoke") await conn.write(encodeRequest(0, 0, 16384));
              if (message.type === "piece") return;
            }
          } catch {
            // reset or cut mid-message: closed all the same
          }
          closed = true;
        })(),
        "the seeder to close the connection or send a piece",
      );
      return { seen, closed };
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the seeder
      }
    }
  };

  await t.step("from device B: no bitfield, no unchoke, no piece; closed", async () => {
    const { seen, closed } = await present(deviceB);
    assert.ok(closed, `${seen}`);
    for (const kind of ["bitfield", "unchoke", "piece", "have"]) {
      assert.ok(!seen.includes(kind), `${kind} in ${seen}`);
    }
  });

  await t.step("control: from device A, the one it was issued to, it is honoured", async () => {
    const { seen, closed } = await present(deviceA);
    assert.ok(!closed, `${seen}`);
    for (const kind of ["bitfield", "unchoke", "piece"]) assert.ok(seen.includes(kind), `${seen}`);
  });
});

/** The certificate fingerprint the tracker recorded for this client's own session. */
async function currentDevice(shell: JsonShell): Promise<string> {
  const sessions = await shell.ok("list_sessions") as { fingerprint: string; current: boolean }[];
  const current = sessions.find((session) => session.current);
  assert.match(String(current?.fingerprint), /^[0-9a-f]{64}$/);
  return current!.fingerprint;
}

Deno.test("restarts keep identities: same tracker fingerprint, no re-trust, session resumes", async () => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  const stateHome = dir.join("state");
  await Deno.mkdir(stateHome);
  let tracker = await TrackerProcess.start(dbPath);
  try {
    const first = fingerprintLine(tracker);
    const port = tracker.port;
    let device: string;
    {
      await using shell = JsonShell.start(port, { stateHome });
      await shell.ok("create_user keeper keeper-pw");
      await shell.ok("login keeper keeper-pw");
      assert.equal((await shell.event("tracker_trusted")).fingerprint, first);

      await tracker.stop();
      await shell.event("tracker_disconnected");
      tracker = await TrackerProcess.start(dbPath, { port });
      assert.equal(fingerprintLine(tracker), first, "the tracker kept its identity");
      assert.deepEqual(await shell.event(["tracker_reconnected", "tracker_refused"]), {
        event: "tracker_reconnected",
        user: "keeper",
      });
      assert.deepEqual(await shell.ok("list_groups"), []);
      assert.ok(!shell.events.some((event) => event.event === "tracker_trusted"));
      device = await currentDevice(shell);
      assert.equal((await shell.quit()).code, 0);
    }

    await using again = JsonShell.start(port, { stateHome });
    await again.ok("login keeper keeper-pw");
    assert.deepEqual(
      again.events.filter((event) => String(event.event).startsWith("tracker_")),
      [],
      "the restarted client re-trusted or was refused",
    );
    // the tracker saw the same device certificate before and after the client's restart
    assert.equal(await currentDevice(again), device);
  } finally {
    await tracker[Symbol.asyncDispose]();
  }
});
