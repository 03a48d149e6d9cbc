/**
 * Who may see and fetch files, and how shares come and go: membership, tickets on the peer
 * wire, stop_share, logout and login, leave_group, and every error a file command can give.
 */

import assert from "node:assert/strict";
import { type BDict, encode } from "../lib/bencode.ts";
import { hashFile } from "../lib/hash.ts";
import { encodeInfo, infoHash } from "../lib/metainfo.ts";
import {
  encodeExtended,
  encodeHandshake,
  encodeRequest,
  encodeSimple,
  WireReader,
} from "../lib/wire.ts";
import {
  JsonShell,
  sha1OfFile,
  startSwarm,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./harness.ts";
import { connectRawTls } from "./raw_tls.ts";

const MiB = 1 << 20;

async function seeders(shell: JsonShell, group: string): Promise<Record<string, number>> {
  const files = await shell.ok(`list_files ${group}`) as { name: string; seeders: number }[];
  return Object.fromEntries(files.map((file) => [file.name, file.seeders]));
}

Deno.test("only members see and fetch a group's files", async (t) => {
  await using swarm = await startSwarm(["owner", "member"]);
  const sha1 = await writeRandomFile(`${swarm.home("owner")}/secret.bin`, MiB);
  await swarm.shell("owner").ok(`upload_file secret.bin ${swarm.group}`);
  await using outsider = JsonShell.start(swarm.tracker.port, { cwd: swarm.dir.path });
  await outsider.ok("create_user outsider pw");
  await outsider.ok("login outsider pw");

  await t.step("a non-member cannot list, fetch or share", async () => {
    const refusal = `you are not a member of group "${swarm.group}"`;
    assert.equal(await outsider.fails(`list_files ${swarm.group}`), refusal);
    assert.equal(await outsider.fails(`download_file ${swarm.group} secret.bin .`), refusal);
    await writeRandomFile(swarm.dir.join("mine.bin"), 10);
    assert.equal(await outsider.fails(`upload_file mine.bin ${swarm.group}`), refusal);
    // hashing starts beside the membership check, and the refusal is what is said whether it
    // comes once the hashing is over (above) or, for a larger file, while it still runs
    await writeRandomFile(swarm.dir.join("large.bin"), 64 * MiB);
    assert.equal(await outsider.fails(`upload_file large.bin ${swarm.group}`), refusal);
    assert.deepEqual(await swarm.shell("owner").ok(`list_files ${swarm.group}`), [
      { name: "secret.bin", size: MiB, sha1, seeders: 1 },
    ]);
  });

  await t.step("a pending request is not membership", async () => {
    await outsider.ok(`join_group ${swarm.group}`);
    assert.match(await outsider.fails(`list_files ${swarm.group}`), /not a member/);
  });

  await t.step("a member can", async () => {
    assert.deepEqual(await swarm.shell("member").ok(`list_files ${swarm.group}`), [
      { name: "secret.bin", size: MiB, sha1, seeders: 1 },
    ]);
  });
});

/** Opens a raw peer connection and completes the BitTorrent handshake. */
async function rawPeer(port: number, infoHashBytes: Uint8Array) {
  const conn = await connectRawTls(port);
  const reader = new WireReader(conn);
  await conn.write(encodeHandshake(infoHashBytes, new Uint8Array(20).fill(7)));
  return { conn, reader };
}

/** Reads until the peer closes; returns the kinds of messages it sent. */
async function messagesUntilClosed(reader: WireReader): Promise<string[]> {
  const seen: string[] = [];
  await within(
    (async () => {
      try {
        for (let message = await reader.next(); message; message = await reader.next()) {
          seen.push(message.type);
        }
      } catch {
        // reset or cut mid-message: closed all the same
      }
    })(),
    "the peer to close the connection",
  );
  return seen;
}

Deno.test("a peer serves no data without a valid ticket", async (t) => {
  await using swarm = await startSwarm(["seed"]);
  const path = `${swarm.home("seed")}/f.bin`;
  await writeRandomFile(path, MiB);
  await swarm.shell("seed").ok(`upload_file f.bin ${swarm.group}`);
  const hashes = await hashFile(path);
  const hash = await infoHash(
    encodeInfo({ name: "f.bin", length: MiB, pieceHashes: hashes.pieceHashes }),
  );
  const port = swarm.shell("seed").peerPort;

  const tryWith = async (handshake: BDict | undefined) => {
    const { conn, reader } = await rawPeer(port, hash);
    try {
      const reply = await reader.readHandshake();
      assert.equal(reply.infoHash.toHex(), hash.toHex());
      if (handshake) await conn.write(encodeExtended(0, encode(handshake)));
      await conn.write(encodeSimple("interested"));
      await conn.write(encodeRequest(0, 0, 16384)).catch(() => {});
      return await messagesUntilClosed(reader);
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the peer
      }
    }
  };

  await t.step("no ticket at all", async () => {
    const seen = await tryWith(new Map([["m", new Map()]]));
    assert.ok(
      !seen.includes("piece") && !seen.includes("bitfield") && !seen.includes("unchoke"),
      `${seen}`,
    );
  });

  await t.step("a forged ticket", async () => {
    const forged = new Map<string, unknown>([["m", new Map()], [
      "ticket",
      new TextEncoder().encode("eyJ1c2VyIjoieCJ9.AAAA"),
    ]]) as BDict;
    const seen = await tryWith(forged);
    assert.ok(!seen.includes("piece") && !seen.includes("unchoke"), `${seen}`);
  });

  await t.step("no extension handshake, just a request", async () => {
    const seen = await tryWith(undefined);
    assert.ok(!seen.includes("piece"), `${seen}`);
  });

  await t.step("a torrent the peer does not hold", async () => {
    const { conn, reader } = await rawPeer(port, new Uint8Array(20).fill(9));
    try {
      await assert.rejects(reader.readHandshake());
    } finally {
      conn.close();
    }
  });

  // and the seeder is unharmed: a member still downloads
  await using member = JsonShell.start(swarm.tracker.port, { cwd: swarm.dir.path });
  await member.ok("create_user m pw");
  await member.ok("login m pw");
  await member.ok(`join_group ${swarm.group}`);
  await swarm.shell("seed").ok(`accept_request ${swarm.group} m`);
  await member.ok(`download_file ${swarm.group} f.bin ${swarm.dir.path}`);
  const done = await member.event("download_complete");
  assert.equal(done.sha1, hashes.sha1);
});

Deno.test("stop_share and leave_group take files out; the last sharer takes the file", async () => {
  await using swarm = await startSwarm(["a", "b", "c"]);
  const group = swarm.group;
  await writeRandomFile(`${swarm.home("a")}/both.bin`, 1000);
  await Deno.copyFile(`${swarm.home("a")}/both.bin`, `${swarm.home("b")}/both.bin`);
  await writeRandomFile(`${swarm.home("b")}/only-b.bin`, 2000);
  await swarm.shell("a").ok(`upload_file both.bin ${group}`);
  await swarm.shell("b").ok(`upload_file both.bin ${group}`);
  await swarm.shell("b").ok(`upload_file only-b.bin ${group}`);
  const c = swarm.shell("c");
  assert.deepEqual(await seeders(c, group), { "both.bin": 2, "only-b.bin": 1 });

  assert.deepEqual(await swarm.shell("a").ok(`stop_share ${group} both.bin`), {
    group,
    name: "both.bin",
    file_removed: false,
  });
  assert.deepEqual(await seeders(c, group), { "both.bin": 1, "only-b.bin": 1 });
  assert.match(await swarm.shell("a").fails(`stop_share ${group} both.bin`), /you do not share/);
  assert.match(
    await swarm.shell("a").fails(`stop_share ${group} nothing.bin`),
    /no file "nothing.bin"/,
  );

  await swarm.shell("b").ok(`leave_group ${group}`);
  assert.deepEqual(await seeders(c, group), {});
  assert.match(await c.fails(`download_file ${group} both.bin .`), /no file "both.bin"/);
});

Deno.test("logout stops serving; login checks the files and serves them again", async (t) => {
  await using swarm = await startSwarm(["s", "d"], {
    clientArgs: { d: ["--stall-timeout-ms", "1500"] },
  });
  const group = swarm.group;
  const s = swarm.shell("s");
  const d = swarm.shell("d");
  const sha1 = await writeRandomFile(`${swarm.home("s")}/keep.bin`, 2 * MiB);
  await writeRandomFile(`${swarm.home("s")}/edit.bin`, 1000);
  await writeRandomFile(`${swarm.home("s")}/touch.bin`, 1000);
  for (const name of ["keep.bin", "edit.bin", "touch.bin"]) {
    await s.ok(`upload_file ${name} ${group}`);
  }

  await t.step("after logout the files stay listed with no seeder", async () => {
    await s.ok("logout");
    assert.deepEqual(await seeders(d, group), { "edit.bin": 0, "keep.bin": 0, "touch.bin": 0 });
  });

  await t.step("a download with no holder waits, says why, then fails", async () => {
    await Deno.mkdir(`${swarm.home("d")}/dl`);
    await d.ok(`download_file ${group} keep.bin ${swarm.home("d")}/dl`);
    const waiting = await d.downloadState("keep.bin", (line) => line.reason !== "");
    assert.equal(waiting.state, "D");
    assert.match(waiting.reason, /waiting/);
    const failed = await d.event("download_failed");
    assert.match(String(failed.reason), /no connected peer has 4 missing pieces for 2 s/);
    const [line] = await d.ok("show_downloads") as { state: string }[];
    assert.equal(line.state, "F");
  });

  await t.step(
    "login restores unchanged files, rehashes touched ones, drops edited ones",
    async () => {
      // same content, new mtime: hashed again and kept
      const touched = `${swarm.home("s")}/touch.bin`;
      await Deno.utime(touched, new Date(), new Date(Date.now() + 5000));
      // same size, other content: dropped with a warning
      const edited = `${swarm.home("s")}/edit.bin`;
      await Deno.writeFile(edited, new Uint8Array(1000).fill(1));
      assert.deepEqual(await s.ok("login s pw-s"), { user: "s", shares_restored: 2 });
      const dropped = await s.event("share_dropped");
      assert.equal(dropped.name, "edit.bin");
      assert.match(String(dropped.reason), /has changed since it was shared/);
      assert.deepEqual(await seeders(d, group), { "keep.bin": 1, "touch.bin": 1 });
    },
  );

  await t.step("the restored file downloads, resuming the failed attempt", async () => {
    await d.ok(`download_file ${group} keep.bin ${swarm.home("d")}/dl`);
    const done = await d.event("download_complete");
    assert.equal(await sha1OfFile(String(done.path)), sha1);
  });
});

Deno.test("file command errors", async (t) => {
  await using swarm = await startSwarm(["s"]);
  const s = swarm.shell("s");
  const group = swarm.group;
  await writeRandomFile(`${swarm.home("s")}/f.bin`, 100);
  await s.ok(`upload_file f.bin ${group}`);

  await t.step("upload_file", async () => {
    // paths are shown as tried: absolute, from where the client was started
    assert.equal(
      await s.fails(`upload_file missing.bin ${group}`),
      `cannot read "${swarm.home("s")}/missing.bin": no such file`,
    );
    assert.equal(
      await s.fails(`upload_file . ${group}`),
      `"${swarm.home("s")}" is not a regular file`,
    );
    assert.match(await s.fails("upload_file f.bin nogroup"), /group "nogroup" does not exist/);
    await Deno.mkdir(`${swarm.home("s")}/other`);
    await writeRandomFile(`${swarm.home("s")}/other/f.bin`, 100);
    assert.match(
      await s.fails(`upload_file other/f.bin ${group}`),
      /another file named "f.bin" is already shared in group/,
    );
    assert.equal(await s.fails("upload_file f.bin"), "usage: upload_file <file_path> <group_id>");
  });

  await t.step("download_file", async () => {
    assert.match(
      await s.fails(`download_file ${group} f.bin ${swarm.home("s")}/nowhere`),
      /destination ".*nowhere" is not an existing directory/,
    );
    assert.match(
      await s.fails(`download_file ${group} f.bin f.bin`),
      /is not an existing directory/,
    );
    assert.match(
      await s.fails(`download_file ${group} f.bin ${swarm.home("s")}`),
      /f\.bin" already exists; not overwriting it/,
    );
    await Deno.mkdir(`${swarm.home("s")}/dl`);
    assert.match(
      await s.fails(`download_file ${group} ghost.bin dl`),
      /no file "ghost.bin" in group/,
    );
    assert.match(await s.fails("download_file nogroup f.bin dl"), /group "nogroup" does not exist/);
    assert.match(await s.fails(`download_file ${group} ../f.bin dl`), /cannot be a file name/);
    assert.match(await s.fails(`download_file ${group} f.bin`), /^usage: download_file/);
  });

  await t.step("logged out", async () => {
    await s.ok("logout");
    for (
      const command of [
        `upload_file f.bin ${group}`,
        `list_files ${group}`,
        `download_file ${group} f.bin dl`,
        "show_downloads",
        `stop_share ${group} f.bin`,
      ]
    ) {
      assert.match(await s.fails(command), /^not logged in/, command);
    }
  });
});

Deno.test("after a tracker restart, clients tell it again what they hold", async () => {
  await using swarm = await startSwarm(["s", "d"]);
  const sha1 = await writeRandomFile(`${swarm.home("s")}/f.bin`, MiB);
  await swarm.shell("s").ok(`upload_file f.bin ${swarm.group}`);
  assert.equal((await swarm.tracker.stop()).code, 0);
  await swarm.shell("s").event("tracker_disconnected");
  await using _restarted = await TrackerProcess.start(swarm.tracker.dbPath, {
    port: swarm.tracker.port,
  });
  for (const name of ["s", "d"]) await swarm.shell(name).event("tracker_reconnected");
  assert.deepEqual(await seeders(swarm.shell("d"), swarm.group), { "f.bin": 1 });
  await swarm.shell("d").ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}`);
  assert.equal((await swarm.shell("d").event("download_complete")).sha1, sha1);
});

Deno.test("garbage on the peer port costs the seeder nothing", async () => {
  await using swarm = await startSwarm(["s", "d"]);
  const sha1 = await writeRandomFile(`${swarm.home("s")}/f.bin`, MiB);
  await swarm.shell("s").ok(`upload_file f.bin ${swarm.group}`);
  const port = swarm.shell("s").peerPort;
  const attacks = [
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    crypto.getRandomValues(new Uint8Array(65_536)),
    // a valid-looking handshake prefix cut short
    new Uint8Array([19, ...new TextEncoder().encode("BitTorrent protocol"), 0, 0]),
  ];
  for (const bytes of attacks) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(bytes).catch(() => {});
    conn.closeWrite().catch(() => {});
    await messagesUntilClosed(new WireReader(conn));
    try {
      conn.close();
    } catch {
      // closed by the seeder
    }
  }
  await swarm.shell("d").ok(`download_file ${swarm.group} f.bin ${swarm.home("d")}`);
  assert.equal((await swarm.shell("d").event("download_complete")).sha1, sha1);
  assert.deepEqual(await swarm.shell("s").ok("show_downloads"), []);
});
