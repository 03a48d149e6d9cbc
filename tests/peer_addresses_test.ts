/**
 * The tracker hands out only serving addresses it has verified (issue 13), through real
 * processes on loopback (127.0.0.2 and the like stand for other hosts): it connects back to
 * the address a client claims and accepts it only where that client's serving certificate
 * answers. A client whose address fails is not handed out and is told why; one presence per
 * user and address.
 */

import assert from "node:assert/strict";
import { generateIdentity, issueCertificate } from "../lib/identity.ts";
import type { PeerEndpoint } from "../lib/protocol.ts";
import { Program } from "../scripts/processes.ts";
import {
  freePort,
  type JsonReply,
  JsonShell,
  startSwarm,
  type Swarm,
  TempDir,
  TrackerProcess,
  writeRandomFile,
} from "./harness.ts";
import { rawTrackerLink } from "./raw_tls.ts";
import { RecordingRelay } from "./relay.ts";

const LOCALHOST = "127.0.0.1";

/** What a downloader is given for `name`: the peers of a locate_file by the group's owner. */
async function handedOut(swarm: Swarm, owner: string, name: string): Promise<PeerEndpoint[]> {
  const link = await rawTrackerLink(swarm.tracker.port, await generateIdentity("observer"));
  try {
    const login = await link.request({ type: "login", user: owner, password: `pw-${owner}` });
    assert.equal(login.ok, true, JSON.stringify(login.error));
    const located = await link.request({ type: "locate_file", group: swarm.group, name });
    assert.equal(located.ok, true, JSON.stringify(located.error));
    return (located.data as { peers: PeerEndpoint[] }).peers;
  } finally {
    link.close();
  }
}

const where = (peers: PeerEndpoint[]) => peers.map((peer) => `${peer.host}:${peer.port}`);

/** Shares a fresh 1 MiB file `name` from `user`'s directory. */
async function share(swarm: Swarm, user: string, name: string, shell = swarm.shell(user)) {
  await writeRandomFile(`${swarm.home(user)}/${name}`, 1 << 20);
  await shell.ok(`upload_file ${name} ${swarm.group}`);
}

Deno.test("the normal case: the address a client serves at, as seen, is handed out", async () => {
  await using swarm = await startSwarm(["owner", "seed"]);
  await share(swarm, "seed", "f.bin");
  const peers = await handedOut(swarm, "owner", "f.bin");
  assert.deepEqual(where(peers), [`${LOCALHOST}:${swarm.shell("seed").peerPort}`]);
  assert.match(peers[0].fingerprint ?? "", /^[0-9a-f]{64}$/);
  assert.ok(
    !swarm.shell("seed").events.some((event) => event.event === "address_unverified"),
    JSON.stringify(swarm.shell("seed").events),
  );
});

Deno.test("a claimed address where nothing listens is not handed out; its client is told why", async () => {
  const nowhere = freePort();
  await using swarm = await startSwarm(["owner", "ghost"], {
    clientArgs: { ghost: ["--public-addr", `${LOCALHOST}:${nowhere}`] },
  });
  await share(swarm, "ghost", "f.bin");
  const told = await swarm.shell("ghost").event("address_unverified");
  assert.equal(told.address, `${LOCALHOST}:${nowhere}`);
  assert.match(
    String(told.reason),
    new RegExp(
      `^nothing accepts connections at 127\\.0\\.0\\.1:${nowhere} \\(connection refused\\)`,
    ),
  );
  assert.deepEqual(await handedOut(swarm, "owner", "f.bin"), []);
  const [file] = await swarm.shell("owner").ok(`list_files ${swarm.group}`) as {
    seeders: number;
  }[];
  assert.equal(file.seeders, 0, "a seeder nobody is sent to is not counted");

  // by hand: the push goes only to a client that asked for it in its hello (older clients
  // would log an unknown push); an announce waits for the check, so it came before the reply
  for (const pushes of [undefined, ["address_check"]]) {
    const identity = await generateIdentity("hand-made ghost");
    const serving = await issueCertificate(identity, "hand-made ghost", [LOCALHOST]);
    const link = await rawTrackerLink(swarm.tracker.port, identity, {
      hello: { peer: { host: LOCALHOST, port: nowhere }, peer_cert: serving.certPem, pushes },
    });
    try {
      await link.request({ type: "login", user: "ghost", password: "pw-ghost" });
      const located = await link.request({
        type: "locate_file",
        group: swarm.group,
        name: "f.bin",
      });
      const info_hash = (located.data as { info_hash: string }).info_hash;
      const announced = await link.request({
        type: "announce",
        group: swarm.group,
        info_hash,
        state: "downloading",
      });
      assert.equal(announced.ok, true, JSON.stringify(announced.error));
      if (pushes === undefined) {
        assert.deepEqual(link.pushes, []);
      } else {
        assert.deepEqual(link.pushes.map((push) => ({ ...push, reason: undefined })), [
          {
            push: "address_check",
            host: LOCALHOST,
            port: nowhere,
            verified: false,
            reason: undefined,
          },
        ]);
        assert.match(String(link.pushes[0].reason), /^nothing accepts connections at/);
      }
    } finally {
      link.close();
    }
  }
});

Deno.test("a claimed address where another peer answers is not handed out; told why", async () => {
  const ownerPort = freePort();
  await using swarm = await startSwarm(["owner", "impostor"], {
    peerPorts: { owner: ownerPort },
    clientArgs: { impostor: ["--public-addr", `${LOCALHOST}:${ownerPort}`] },
  });
  await share(swarm, "impostor", "f.bin");
  const told = await swarm.shell("impostor").event("address_unverified");
  assert.match(
    String(told.reason),
    /^127\.0\.0\.1:\d+ presented another certificate \(SHA256:[0-9a-f]{64}\) than the one this client serves with \(SHA256:[0-9a-f]{64}\)/,
  );
  assert.deepEqual(await handedOut(swarm, "owner", "f.bin"), []);
  // the owner serving there is not disturbed: its own share is handed out at its own address
  await share(swarm, "owner", "g.bin");
  const link = await rawTrackerLink(swarm.tracker.port, await generateIdentity("observer"));
  try {
    await link.request({ type: "login", user: "impostor", password: "pw-impostor" });
    const located = await link.request({ type: "locate_file", group: swarm.group, name: "g.bin" });
    assert.deepEqual(where((located.data as { peers: PeerEndpoint[] }).peers), [
      `${LOCALHOST}:${ownerPort}`,
    ]);
  } finally {
    link.close();
  }
});

Deno.test("a correct claimed address is handed out, and peers download from it", async (t) => {
  await t.step("a client on another host (127.0.0.2) than its link comes from", async () => {
    await using swarm = await startSwarm(["owner", "d"]);
    const port = freePort();
    await using seed = JsonShell.start(swarm.tracker.port, {
      cwd: swarm.home("owner"),
      clientHost: "127.0.0.2",
      peerPort: port,
    });
    await seed.ok("login owner pw-owner");
    await share(swarm, "owner", "f.bin", seed);
    const peers = await handedOut(swarm, "owner", "f.bin");
    assert.deepEqual(where(peers), [`127.0.0.2:${port}`]);
    await downloads(swarm.shell("d"), swarm, "f.bin", `127.0.0.2:${port}`);
  });

  await t.step("a forwarded port (a relay to the client's own)", async () => {
    const seedPort = freePort();
    await using forward = RecordingRelay.start({
      target: { hostname: LOCALHOST, port: seedPort },
    });
    await using swarm = await startSwarm(["owner", "seed", "d"], {
      peerPorts: { seed: seedPort },
      clientArgs: { seed: ["--public-addr", `${LOCALHOST}:${forward.port}`] },
    });
    await share(swarm, "seed", "f.bin");
    assert.deepEqual(where(await handedOut(swarm, "owner", "f.bin")), [
      `${LOCALHOST}:${forward.port}`,
    ]);
    await downloads(swarm.shell("d"), swarm, "f.bin", `${LOCALHOST}:${forward.port}`);
  });
});

/** `shell` downloads `name` completely, from `peer`. */
async function downloads(shell: JsonShell, swarm: Swarm, name: string, peer: string) {
  const dir = await Deno.makeTempDir({ dir: swarm.dir.path });
  await shell.ok(`download_file ${swarm.group} ${name} ${dir}`);
  const done = await shell.event(
    ["download_complete", "download_failed"],
    (event) => event.name === name,
  ) as JsonReply & { peers: { peer: string; bytes: number }[] };
  assert.equal(done.event, "download_complete", JSON.stringify(done));
  assert.deepEqual(done.peers.filter((p) => p.bytes > 0).map((p) => p.peer), [peer]);
}

Deno.test("one presence per user and address: a client taking over the address replaces the one before", async () => {
  // one forwarded port, first to client A of user u, then moved to u's client B
  const portA = freePort();
  const portB = freePort();
  await using forward = RecordingRelay.start({ target: { hostname: LOCALHOST, port: portA } });
  const publicAddr = ["--public-addr", `${LOCALHOST}:${forward.port}`];
  await using swarm = await startSwarm(["owner", "u"], {
    peerPorts: { u: portA },
    clientArgs: { u: publicAddr },
  });
  await share(swarm, "u", "f.bin");
  const before = await handedOut(swarm, "owner", "f.bin");
  assert.deepEqual(where(before), [`${LOCALHOST}:${forward.port}`]);

  forward.target = { hostname: LOCALHOST, port: portB };
  // B logs in from the same directory: it serves u's shares again, at the same address
  const b = await swarm.addClient("u", publicAddr, portB);
  const restored = await b.ok(`list_files ${swarm.group}`) as { seeders: number }[];
  assert.equal(restored[0].seeders, 1, "one presence at the address, not two");
  const after = await handedOut(swarm, "owner", "f.bin");
  assert.deepEqual(where(after), [`${LOCALHOST}:${forward.port}`]);
  assert.notEqual(after[0].fingerprint, before[0].fingerprint, "B's certificate, not A's");
  // A, still online, is told that its address went to the other client
  const told = await swarm.shell("u").event("address_unverified");
  assert.match(String(told.reason), /another client of u now serves at 127\.0\.0\.1:\d+/);
  await downloads(swarm.shell("owner"), swarm, "f.bin", `${LOCALHOST}:${forward.port}`);

  // another device of u at another address is a presence of its own (and the owner now
  // serves what it downloaded)
  const c = await swarm.addClient("u");
  const all = await handedOut(swarm, "owner", "f.bin");
  assert.deepEqual(
    where(all).sort(),
    [forward.port, c.peerPort, swarm.shell("owner").peerPort].map((port) => `${LOCALHOST}:${port}`)
      .sort(),
  );
});

Deno.test("without TLS only the seen host is handed out; a foreign one is told why", async () => {
  await using swarm = await startSwarm(["owner", "seed", "far"], {
    trackerArgs: ["--insecure-plaintext"],
    clientArgs: {
      owner: ["--insecure-plaintext"],
      seed: ["--insecure-plaintext"],
      far: ["--insecure-plaintext", "--public-addr", `127.0.0.2:${freePort()}`],
    },
  });
  await share(swarm, "seed", "f.bin");
  await share(swarm, "far", "g.bin");
  const told = await swarm.shell("far").event("address_unverified");
  assert.match(String(told.reason), /without TLS \(--insecure-plaintext\)/);
  assert.match(String(told.reason), /comes from \(127\.0\.0\.1\)/);
  const files = await swarm.shell("owner").ok(`list_files ${swarm.group}`) as {
    name: string;
    seeders: number;
  }[];
  assert.deepEqual(files.map(({ name, seeders }) => ({ name, seeders })), [
    { name: "f.bin", seeders: 1 },
    { name: "g.bin", seeders: 0 },
  ]);
  await downloads(
    swarm.shell("owner"),
    swarm,
    "f.bin",
    `${LOCALHOST}:${swarm.shell("seed").peerPort}`,
  );
});

Deno.test("human mode: one warning line says why nobody downloads from this client", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("tracker.db"));
  const nowhere = freePort();
  await using client = new Program([
    "client",
    LOCALHOST,
    "0",
    LOCALHOST,
    String(tracker.port),
    "--public-addr",
    `${LOCALHOST}:${nowhere}`,
  ], { stdin: true });
  await client.write("create_user hu pw\nlogin hu pw\n");
  const line = await client.stdout.until(
    (text) => text.startsWith("warning:"),
    "the warning about the address",
  );
  assert.equal(
    line,
    `warning: peers are not sent to this client at 127.0.0.1:${nowhere}, so nobody downloads ` +
      `from it: nothing accepts connections at 127.0.0.1:${nowhere} (connection refused)`,
  );
  const lines = client.stdout.all;
  assert.ok(
    lines.indexOf("logged in as hu") >= 0 && lines.indexOf("logged in as hu") < lines.indexOf(line),
    `the warning comes after the login: ${JSON.stringify(lines)}`,
  );
  await client.endInput();
  assert.equal((await client.exited()).code, 0);
  assert.equal(
    client.stdout.all.filter((text) => text.startsWith("warning:")).length,
    1,
    "said once",
  );
});
