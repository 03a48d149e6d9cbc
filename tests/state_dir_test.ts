import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/identity.ts";
import {
  defaultStateDir,
  MAX_UNFINISHED_DOWNLOADS,
  type PendingShares,
  StateDir,
  trackerAddress,
  type UnfinishedDownload,
  unfinishedDownloadProblem,
} from "../peer/state_dir.ts";
import { TempDir } from "./harness.ts";

const isWindows = Deno.build.os === "windows";
const FP_A = "a".repeat(64);
const FP_B = "b".repeat(64);

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

function userError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof UserError && pattern.test(error.message);
}

Deno.test("state dir: defaultStateDir follows XDG_STATE_HOME, then HOME", () => {
  const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });
  assert.equal(
    defaultStateDir(env({ XDG_STATE_HOME: "/x/state", HOME: "/home/u" })),
    "/x/state/swarmshare",
  );
  assert.equal(defaultStateDir(env({ XDG_STATE_HOME: "/x/state/" })), "/x/state/swarmshare");
  assert.equal(defaultStateDir(env({ HOME: "/home/u" })), "/home/u/.local/state/swarmshare");
  assert.equal(
    defaultStateDir(env({ XDG_STATE_HOME: "", HOME: "/home/u" })),
    "/home/u/.local/state/swarmshare",
  );
  assert.equal(
    defaultStateDir(env({ XDG_STATE_HOME: "relative", HOME: "/home/u" })),
    "/home/u/.local/state/swarmshare",
    "a relative XDG_STATE_HOME is ignored",
  );
  assert.throws(() => defaultStateDir(env({})), userError(/XDG_STATE_HOME or HOME/));
});

Deno.test({
  name: "state dir: open makes a private directory and refuses what is not one",
  ignore: isWindows,
  async fn(t) {
    await using temp = await TempDir.create();
    await t.step("created with its parents, mode 0700", async () => {
      const path = temp.join("a/b/swarmshare");
      const state = await StateDir.open(path);
      assert.equal(state.path, path);
      assert.equal(await modeOf(path), 0o700);
    });
    await t.step("an existing open directory is tightened", async () => {
      const path = temp.join("loose");
      await Deno.mkdir(path);
      await Deno.chmod(path, 0o755);
      await StateDir.open(path);
      assert.equal(await modeOf(path), 0o700);
    });
    await t.step("a symlink is refused", async () => {
      await Deno.mkdir(temp.join("real"), { mode: 0o700 });
      await Deno.symlink(temp.join("real"), temp.join("link"));
      await assert.rejects(StateDir.open(temp.join("link")), userError(/symbolic link/));
    });
    await t.step("a file is refused", async () => {
      await Deno.writeTextFile(temp.join("file"), "");
      await assert.rejects(StateDir.open(temp.join("file")), userError(/not a directory/));
    });
    await t.step({
      name: "another user's directory is refused",
      ignore: Deno.uid() !== 0, // only root can give a directory away
      fn: async () => {
        const path = temp.join("theirs");
        await Deno.mkdir(path, { mode: 0o777 });
        await Deno.chown(path, 4242, 4242);
        await assert.rejects(StateDir.open(path), userError(/belongs to another user/));
      },
    });
  },
});

Deno.test("state dir: the identity is made once, kept private and stable", async () => {
  await using temp = await TempDir.create();
  const path = temp.join("state");
  const first = await (await StateDir.open(path)).identity();
  const again = await (await StateDir.open(path)).identity();
  assert.equal(again.fingerprint, first.fingerprint);
  assert.equal(again.keyPem, first.keyPem);
  assert.equal(await Deno.readTextFile(`${path}/identity.key`), first.keyPem);
  assert.equal(await Deno.readTextFile(`${path}/identity.crt`), first.certPem);
  if (!isWindows) {
    assert.equal(await modeOf(`${path}/identity.key`), 0o600);
    await Deno.chmod(`${path}/identity.key`, 0o644);
    await (await StateDir.open(path)).identity();
    assert.equal(await modeOf(`${path}/identity.key`), 0o600, "a loose key file is tightened");
  }
  const names = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  assert.deepEqual(names.sort(), ["identity.crt", "identity.key"], "no temporary files left");
});

Deno.test("state dir: clients starting at once end with one identity", async (t) => {
  await t.step("two StateDir objects in one process", async () => {
    for (let round = 0; round < 10; round++) {
      await using temp = await TempDir.create();
      const path = temp.join("state");
      const [a, b] = await Promise.all([StateDir.open(path), StateDir.open(path)]);
      const [x, y] = await Promise.all([a.identity(), b.identity()]);
      assert.equal(x.fingerprint, y.fingerprint, `round ${round}`);
      assert.equal((await (await StateDir.open(path)).identity()).fingerprint, x.fingerprint);
    }
  });
  await t.step("four processes without --allow-sys", async () => {
    await using temp = await TempDir.create();
    const script = temp.join("identity.ts");
    await Deno.writeTextFile(
      script,
      `import { StateDir } from ${JSON.stringify(import.meta.resolve("../peer/state_dir.ts"))};
       const state = await StateDir.open(Deno.args[0]);
       console.log((await state.identity()).fingerprint);`,
    );
    for (let round = 0; round < 2; round++) {
      const path = temp.join(`state-${round}`);
      const outputs = await Promise.all(
        [1, 2, 3, 4].map(() =>
          new Deno.Command(Deno.execPath(), {
            args: ["run", "--quiet", "--allow-read", "--allow-write", script, path],
            stdout: "piped",
            stderr: "piped",
          }).output()
        ),
      );
      const fingerprints = outputs.map((output) => {
        assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
        return new TextDecoder().decode(output.stdout).trim();
      });
      assert.match(fingerprints[0], /^[0-9a-f]{64}$/);
      assert.deepEqual(new Set(fingerprints).size, 1, fingerprints.join("\n"));
      const stored = await (await StateDir.open(path)).identity();
      assert.equal(stored.fingerprint, fingerprints[0]);
    }
  });
});

Deno.test("state dir: broken identity files are refused, naming the file", async (t) => {
  await using temp = await TempDir.create();
  let n = 0;
  const stateWith = async (files: Record<string, string>) => {
    const path = temp.join(`state-${n++}`);
    const state = await StateDir.open(path);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${path}/${name}`, text);
    }
    return state;
  };
  const good = await generateIdentity("swarmshare client");
  const other = await generateIdentity("swarmshare client");

  await t.step("a key file larger than 64 KiB", async () => {
    const state = await stateWith({ "identity.key": "x".repeat(64 * 1024 + 1) });
    await assert.rejects(
      state.identity(),
      userError(/identity\.key: larger than 64 KiB; move identity\.key and identity\.crt away/),
    );
  });
  await t.step("a key file that is no key", async () => {
    const state = await stateWith({ "identity.key": "hello", "identity.crt": good.certPem });
    await assert.rejects(state.identity(), userError(/identity\.key: no PRIVATE KEY block/));
  });
  await t.step("a certificate for another key", async () => {
    const state = await stateWith({ "identity.key": good.keyPem, "identity.crt": other.certPem });
    await assert.rejects(
      state.identity(),
      userError(/identity\.crt: the certificate is not for the key in identity\.key; move/),
    );
  });
  await t.step("a certificate without its key", async () => {
    const state = await stateWith({ "identity.crt": good.certPem });
    await assert.rejects(state.identity(), userError(/identity\.crt exists without identity\.key/));
  });
  await t.step({
    name: "an unreadable key file",
    ignore: isWindows || Deno.uid() === 0, // root reads anything
    fn: async () => {
      const state = await stateWith({ "identity.key": good.keyPem });
      await Deno.chmod(`${state.path}/identity.key`, 0);
      await assert.rejects(state.identity(), userError(/identity\.key: cannot read it/));
    },
  });
  await t.step("a key without a certificate gets one for that key", async () => {
    const state = await stateWith({ "identity.key": good.keyPem });
    const identity = await state.identity();
    assert.equal(identity.keyPem, good.keyPem);
    assert.notEqual(identity.fingerprint, good.fingerprint);
  });
});

Deno.test("state dir: known_trackers pins one fingerprint per address", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const file = `${state.path}/known_trackers`;

  await t.step("nothing pinned yet", async () => {
    assert.equal(await state.knownTracker("127.0.0.1:5000"), undefined);
  });
  await t.step("remember, look up, remember again", async () => {
    await state.rememberTracker("127.0.0.1:5000", FP_A);
    await state.rememberTracker("tracker.example:443", FP_B);
    await state.rememberTracker("127.0.0.1:5000", FP_A); // the same pin: nothing to do
    assert.equal(await state.knownTracker("127.0.0.1:5000"), FP_A);
    assert.equal(await state.knownTracker("Tracker.Example:443"), FP_B);
    assert.equal(await state.knownTracker("127.0.0.1:5001"), undefined);
    assert.equal(
      await Deno.readTextFile(file),
      `127.0.0.1:5000 SHA256:${FP_A}\ntracker.example:443 SHA256:${FP_B}\n`,
    );
    if (!isWindows) assert.equal(await modeOf(file), 0o600);
  });
  await t.step("another fingerprint for a pinned address is refused", async () => {
    await assert.rejects(
      state.rememberTracker("127.0.0.1:5000", FP_B),
      userError(
        new RegExp(`already pins 127\\.0\\.0\\.1:5000 to SHA256:${FP_A}, not SHA256:${FP_B}`),
      ),
    );
    assert.equal(await state.knownTracker("127.0.0.1:5000"), FP_A);
  });
  await t.step("IPv6 in brackets, in any spelling", async () => {
    assert.equal(trackerAddress("::1", 5000), "[::1]:5000");
    assert.equal(trackerAddress("127.0.0.1", 5000), "127.0.0.1:5000");
    await state.rememberTracker("[0:0::1]:5000", FP_B);
    assert.equal(await state.knownTracker("[::1]:5000"), FP_B);
    assert.equal(await state.knownTracker(trackerAddress("::1", 5000)), FP_B);
    assert.ok((await Deno.readTextFile(file)).includes(`\n[::1]:5000 SHA256:${FP_B}\n`));
    await assert.rejects(state.knownTracker("::1:5000"), userError(/not a tracker address/));
    await assert.rejects(state.rememberTracker("host", FP_A), userError(/not a tracker address/));
    await assert.rejects(state.rememberTracker("host:0", FP_A), userError(/not a tracker address/));
  });
  await t.step("comments, blank and malformed lines are skipped", async () => {
    const path = temp.join("edited");
    const edited = await StateDir.open(path);
    await Deno.writeTextFile(
      `${path}/known_trackers`,
      [
        "# my trackers",
        "",
        `#10.0.0.1:1 SHA256:${FP_A}`,
        `10.0.0.2:1 SHA256:${FP_A} extra`,
        "10.0.0.3:1 SHA256:nothex",
        `10.0.0.4 SHA256:${FP_A}`,
        `  10.0.0.5:1\tsha256:${FP_A.toUpperCase()}  `,
        `10.0.0.6:1 SHA256:${FP_B}`, // no final newline
      ].join("\n"),
    );
    for (const host of ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]) {
      assert.equal(await edited.knownTracker(`${host}:1`), undefined, host);
    }
    assert.equal(await edited.knownTracker("10.0.0.5:1"), FP_A);
    await edited.rememberTracker("10.0.0.7:1", FP_A);
    assert.equal(await edited.knownTracker("10.0.0.6:1"), FP_B, "the last line stays whole");
    assert.equal(await edited.knownTracker("10.0.0.7:1"), FP_A);
  });
  await t.step("a file over 1 MiB is refused", async () => {
    const path = temp.join("huge");
    const huge = await StateDir.open(path);
    await Deno.writeTextFile(`${path}/known_trackers`, "#".repeat(1024 * 1024 + 1));
    await assert.rejects(huge.knownTracker("10.0.0.1:1"), userError(/larger than 1 MiB/));
  });
});

Deno.test("state dir: pending shares are kept per tracker and user until removed", async () => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const share = (name: string) => ({
    group: "films",
    name,
    size: 3,
    sha1: "a".repeat(40),
    info_hash: "b".repeat(40),
    info: "ZGU=",
    path: `/data/${name}`,
    mtime_ms: 1_700_000_000_000,
  });
  const alice = state.pendingShares("127.0.0.1:5000", "alice");
  assert.deepEqual(await alice.list(), [], "none before the first");
  await alice.add(share("a.bin"));
  await alice.add(share("b.bin"));
  await alice.add({ ...share("a.bin"), size: 4 }); // the same share again replaces it
  await state.pendingShares("127.0.0.1:5000", "bob").add(share("c.bin"));
  await state.pendingShares("127.0.0.1:5001", "alice").add(share("d.bin"));
  const names = async (shares: PendingShares) =>
    (await shares.list()).map((s) => `${s.name}:${s.size}`).sort();
  assert.deepEqual(await names(alice), ["a.bin:4", "b.bin:3"]);
  assert.deepEqual(
    await names(state.pendingShares("LOCALHOST:5000", "alice")),
    [],
    "another tracker address",
  );
  // a file a killed client left half written, and garbage, are skipped
  await Deno.writeTextFile(temp.join("state/pending_shares/zz.json"), '{"tracker":"127.0.0.1:5');
  await Deno.writeTextFile(
    temp.join("state/pending_shares/zy.json"),
    JSON.stringify({ tracker: "127.0.0.1:5000", user: "alice", share: { name: "x" } }),
  );
  assert.deepEqual(await names(alice), ["a.bin:4", "b.bin:3"]);
  if (!isWindows) {
    for await (const entry of Deno.readDir(temp.join("state/pending_shares"))) {
      if (entry.name.startsWith("z")) continue;
      assert.equal(await modeOf(temp.join(`state/pending_shares/${entry.name}`)), 0o600);
    }
  }
  await alice.remove("films", "a.bin");
  await alice.remove("films", "a.bin"); // gone already: nothing to do
  assert.deepEqual(await names(alice), ["b.bin:3"]);
});

Deno.test("state dir: unfinished downloads are kept per tracker and user, checked when read", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const dir = temp.join("state/unfinished_downloads");
  const download = (name: string, more: Partial<UnfinishedDownload> = {}) => ({
    group: "films",
    name,
    path: `/data/${name}`,
    info_hash: "b".repeat(40),
    paused: false,
    pieces_done: 0,
    ...more,
  });
  const alice = state.unfinishedDownloads("127.0.0.1:5000", "alice");
  const names = async () =>
    (await alice.list()).downloads.map((d) => `${d.name}:${d.paused}`).sort();

  await t.step("kept, replaced, forgotten; others' are not listed", async () => {
    assert.deepEqual(await alice.list(), { downloads: [], problems: [] }, "none before the first");
    await alice.put(download("a.bin"));
    await alice.put(download("b.bin"));
    await alice.put(download("a.bin", { paused: true, pieces_done: 3 })); // replaces it
    await state.unfinishedDownloads("127.0.0.1:5000", "bob").put(download("c.bin"));
    await state.unfinishedDownloads("127.0.0.1:5001", "alice").put(download("d.bin"));
    assert.deepEqual(await names(), ["a.bin:true", "b.bin:false"]);
    assert.deepEqual((await alice.list()).problems, []);
    if (!isWindows) {
      for await (const entry of Deno.readDir(dir)) {
        assert.equal(await modeOf(`${dir}/${entry.name}`), 0o600);
      }
    }
    await alice.remove("films", "b.bin");
    await alice.remove("films", "b.bin"); // gone already: nothing to do
    assert.deepEqual(await names(), ["a.bin:true"]);
  });

  await t.step("corrupt and hostile files are reported and skipped", async () => {
    const planted = {
      "p1.json": "{half a file",
      "p2.json": "[1, 2]",
      "p3.json": JSON.stringify({
        tracker: "127.0.0.1:5000",
        user: "alice",
        download: download("x.bin", { path: "relative/x.bin" }),
      }),
      "p4.json": JSON.stringify({
        tracker: "127.0.0.1:5000",
        user: "alice",
        download: download("x.bin", { path: "/home/alice/.bashrc" }),
      }),
      // well formed, but under another download's name (copied or planted)
      "p5.json": JSON.stringify({
        tracker: "127.0.0.1:5000",
        user: "alice",
        download: download("y.bin"),
      }),
      "p6.json": "x".repeat(17 * 1024),
      "p7.json": new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    };
    for (const [name, content] of Object.entries(planted)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    await Deno.mkdir(`${dir}/p8.json`);
    const { downloads, problems } = await alice.list();
    assert.deepEqual(downloads.map((d) => d.name), ["a.bin"]);
    assert.deepEqual(
      problems.map((p) => [p.file.slice(dir.length + 1), p.reason]),
      [
        ["p1.json", "not valid JSON"],
        ["p2.json", "not a remembered download"],
        ["p3.json", "its path is not an absolute path to the file"],
        ["p4.json", "its path is not an absolute path to the file"],
        ["p5.json", "its name does not match its download"],
        ["p6.json", "larger than 16 KiB"],
        ["p7.json", "not UTF-8 text"],
        ["p8.json", "not a regular file"],
      ],
    );
    for (const name of [...Object.keys(planted), "p8.json"]) {
      await Deno.remove(`${dir}/${name}`);
    }
  });

  await t.step("what a valid entry must be", () => {
    assert.equal(unfinishedDownloadProblem(download("a.bin")), undefined);
    for (
      const [value, problem] of [
        [null, "no download in it"],
        [download("a.bin", { group: "no spaces" }), "no valid group id"],
        [download("../a", { path: "/data/../a" }), "no valid file name"],
        [
          download("a.bin", { path: "/data/./a.bin" }),
          "its path is not an absolute path to the file",
        ],
        [
          download("a.bin", { path: "/data/b.bin" }),
          "its path is not an absolute path to the file",
        ],
        [
          download("a.bin", { path: `/${"d".repeat(5000)}/a.bin` }),
          "its path is not an absolute path to the file",
        ],
        [download("a.bin", { info_hash: "B".repeat(40) }), "no valid info_hash"],
        [{ ...download("a.bin"), paused: "no" }, "no valid paused flag"],
        [download("a.bin", { pieces_done: -1 }), "no valid piece count"],
        [download("a.bin", { pieces_done: 1.5 }), "no valid piece count"],
      ] as const
    ) {
      assert.equal(unfinishedDownloadProblem(value), problem, JSON.stringify(value).slice(0, 80));
    }
  });

  await t.step(`at most ${MAX_UNFINISHED_DOWNLOADS} are listed`, async () => {
    for (let i = 0; i <= MAX_UNFINISHED_DOWNLOADS; i++) await alice.put(download(`n${i}.bin`));
    const { downloads, problems } = await alice.list();
    assert.equal(downloads.length, MAX_UNFINISHED_DOWNLOADS);
    assert.deepEqual(problems.map((p) => p.reason), [
      `more than ${MAX_UNFINISHED_DOWNLOADS} unfinished downloads`,
      `more than ${MAX_UNFINISHED_DOWNLOADS} unfinished downloads`,
    ]);
  });
});
