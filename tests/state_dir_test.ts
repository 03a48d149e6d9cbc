import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { generateIdentity } from "../lib/identity.ts";
import type { ClientSession } from "../peer/session.ts";
import { Shell } from "../peer/shell.ts";
import {
  defaultStateDir,
  HISTORY_LIMIT_BYTES,
  HISTORY_LINE_MAX_CHARS,
  HISTORY_LINES,
  MAX_UNFINISHED_DOWNLOADS,
  MAX_UNFINISHED_FILES_READ,
  MAX_UNFINISHED_PROBLEMS,
  parseAuthorityTrackers,
  type PendingShares,
  StateDir,
  trackerAddress,
  type UnfinishedDownload,
  unfinishedDownloadProblem,
} from "../peer/state_dir.ts";
import { TempDir, within } from "./harness.ts";

const isWindows = Deno.build.os === "windows";
const FP_A = "a".repeat(64);
const FP_B = "b".repeat(64);
const TRACKER = "127.0.0.1:5000";
// deno-lint-ignore no-control-regex
const TERMINAL_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** A remembered download as a client writes it, with `more` changed. */
function download(name: string, more: Partial<UnfinishedDownload> = {}): UnfinishedDownload {
  return {
    group: "films",
    name,
    path: `/data/${name}`,
    info_hash: "b".repeat(40),
    paused: false,
    pieces_done: 0,
    ...more,
  };
}

/** Every entry of a directory, names only (empty when there is none). */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
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

Deno.test("state dir: authority_trackers lists addresses an authority vouched for", async () => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const file = `${state.path}/authority_trackers`;
  assert.equal(await state.wasVouchedByAuthority("tracker.example:443"), false, "no file yet");
  await state.rememberAuthorityTracker("Tracker.Example:443");
  await state.rememberAuthorityTracker("tracker.example:443"); // listed already
  await state.rememberAuthorityTracker("[0:0::1]:5000");
  assert.equal(await Deno.readTextFile(file), "tracker.example:443\n[::1]:5000\n");
  if (!isWindows) assert.equal(await modeOf(file), 0o600);
  assert.equal(await state.wasVouchedByAuthority("TRACKER.example:443"), true);
  assert.equal(await state.wasVouchedByAuthority("tracker.example:444"), false);
  assert.deepEqual(
    parseAuthorityTrackers(
      ["# a.example:1", "", " b.example:2 ", "c.example:3 x", "d.example", "\u0000:4", "E:5"]
        .join("\r\n"),
    ),
    ["b.example:2", "e:5"],
  );
  await assert.rejects(state.rememberAuthorityTracker("host"), userError(/not a tracker address/));
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

Deno.test("unfinished_downloads: links are never followed, odd names reported as they are", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const alice = state.unfinishedDownloads(TRACKER, "alice");
  const dir = temp.join("state/unfinished_downloads");
  await alice.put(download("good.bin"));
  const [good] = await namesIn(dir);

  await t.step("a link to a valid record elsewhere, a link to a directory, a pipe", async () => {
    // a perfect record of ours, but outside the state directory: a link to it is not read
    await Deno.writeTextFile(
      temp.join("planted.json"),
      JSON.stringify({ tracker: TRACKER, user: "alice", download: download("x.bin") }),
    );
    await Deno.symlink(temp.join("planted.json"), `${dir}/link.json`);
    await Deno.symlink(temp.path, `${dir}/dirlink.json`);
    await new Deno.Command("mkfifo", { args: [`${dir}/pipe.json`] }).output();
    const { downloads, problems } = await within(alice.list(), "the list, with a pipe in it");
    assert.deepEqual(downloads.map((d) => d.name), ["good.bin"]);
    assert.deepEqual(problems.map((p) => [p.file.slice(dir.length + 1), p.reason]), [
      ["dirlink.json", "a symbolic link"],
      ["link.json", "a symbolic link"],
      ["pipe.json", "not a regular file"],
    ]);
    for (const name of ["link.json", "dirlink.json", "pipe.json"]) {
      await Deno.remove(`${dir}/${name}`);
    }
  });

  await t.step(
    "names with control characters and line breaks are reported as they are",
    async () => {
      const odd = "evil\x1b[2J\nerror: forged\u202e.json";
      await Deno.writeTextFile(`${dir}/${odd}`, "{");
      await Deno.writeTextFile(
        `${dir}/dots.json`,
        JSON.stringify({
          tracker: TRACKER,
          user: "alice",
          download: download("../../.bashrc", { path: "/data/../../.bashrc" }),
        }),
      );
      const { problems } = await alice.list();
      assert.deepEqual(problems.map((p) => [p.file.slice(dir.length + 1), p.reason]), [
        ["dots.json", "no valid file name"],
        [odd, "not valid JSON"],
      ]);
      // as the shell prints them: one line each, nothing a terminal acts on
      const printed: string[] = [];
      const print = console.log;
      console.log = (line: string) => printed.push(line);
      try {
        const shell = new Shell({ session: {} as ClientSession, json: false, interactive: false });
        for (const { file, reason } of problems) {
          shell.announce({ event: "download_not_resumed", group: null, name: null, file, reason });
        }
      } finally {
        console.log = print;
      }
      assert.deepEqual(printed, [
        `warning: not resuming from ${dir}/dots.json: no valid file name`,
        `warning: not resuming from ${dir}/evil\\u001b[2J\\nerror: forged\\u202e.json: ` +
        "not valid JSON",
      ]);
      await Deno.remove(`${dir}/${odd}`);
      await Deno.remove(`${dir}/dots.json`);
    },
  );

  await t.step(
    "thousands of junk files: a bounded read, a bounded number of problems",
    async () => {
      const junk = MAX_UNFINISHED_FILES_READ + 500;
      for (let i = 0; i < junk; i++) {
        await Deno.writeTextFile(`${dir}/zz-${String(i).padStart(5, "0")}.json`, "x");
      }
      const { downloads, problems } = await alice.list();
      assert.deepEqual(downloads.map((d) => d.name), ["good.bin"], "the good one still counts");
      assert.equal(problems.length, MAX_UNFINISHED_PROBLEMS + 1);
      assert.deepEqual(problems[0], {
        file: dir,
        reason: `it holds ${junk + 1} files; only ${MAX_UNFINISHED_FILES_READ} were read`,
      });
      assert.deepEqual(problems.at(-1), {
        file: dir,
        // read: the good one and 999 junk files, of which 9 were said one by one
        reason: `${MAX_UNFINISHED_FILES_READ - 1 - (MAX_UNFINISHED_PROBLEMS - 1)} more unusable ` +
          "files in it skipped",
      });
      for (const name of await namesIn(dir)) {
        if (name.startsWith("zz-")) await Deno.remove(`${dir}/${name}`);
      }
    },
  );

  await t.step(
    "the directory itself a link: said once, nothing read, written or removed there",
    async () => {
      await Deno.rename(dir, temp.join("moved"));
      await Deno.mkdir(temp.join("elsewhere"));
      await Deno.symlink(temp.join("elsewhere"), dir);
      const elsewhereFile = temp.join(`elsewhere/${good}`);
      await Deno.copyFile(temp.join(`moved/${good}`), elsewhereFile);
      assert.deepEqual(await alice.list(), {
        downloads: [],
        problems: [{
          file: dir,
          reason: "it is a symbolic link; nothing in it is read or written",
        }],
      });
      await assert.rejects(alice.put(download("new.bin")), /is a symbolic link/);
      await assert.rejects(alice.remove("films", "good.bin"), /is a symbolic link/);
      assert.deepEqual(await namesIn(temp.join("elsewhere")), [good]);
      // nor is a pending share written there
      await Deno.symlink(temp.join("elsewhere"), temp.join("state/pending_shares"));
      const shares = state.pendingShares(TRACKER, "alice");
      await assert.rejects(shares.list(), /is a symbolic link/);
      await assert.rejects(
        shares.add({
          group: "films",
          name: "s.bin",
          size: 1,
          sha1: "a".repeat(40),
          info_hash: "b".repeat(40),
          info: "",
          path: "/data/s.bin",
          mtime_ms: 0,
        }),
        /is a symbolic link/,
      );
      assert.deepEqual(await namesIn(temp.join("elsewhere")), [good]);
    },
  );
});

Deno.test("history: links, pipes and directories refused; huge and binary files read within bounds", async (t) => {
  await using temp = await TempDir.create();
  const state = await StateDir.open(temp.join("state"));
  const history = state.history("alice");
  const dir = temp.join("state/history");
  await Deno.mkdir(dir);

  await t.step("a link to a file elsewhere is neither read nor written through", async () => {
    const target = temp.join("target.txt");
    await Deno.writeTextFile(target, "secret line\n");
    await Deno.symlink(target, history.path);
    await assert.rejects(history.load(), /is a symbolic link; it is not followed/);
    await assert.rejects(history.append(["list_groups"]), /is a symbolic link/);
    assert.equal(await Deno.readTextFile(target), "secret line\n");
    assert.ok((await Deno.lstat(history.path)).isSymlink, "the user's link is left alone");
    await Deno.remove(history.path);
  });

  await t.step(
    "a pipe is never opened (it would wait for ever), a directory is refused",
    async () => {
      await new Deno.Command("mkfifo", { args: [history.path] }).output();
      await assert.rejects(within(history.load(), "load of a pipe"), /is not a regular file/);
      await assert.rejects(within(history.append(["x"]), "save over a pipe"), /not a regular/);
      await Deno.remove(history.path);
      await Deno.mkdir(history.path);
      await assert.rejects(history.load(), /is not a regular file/);
      await Deno.remove(history.path);
    },
  );

  await t.step("the history directory a link: nothing read or written there", async () => {
    await Deno.remove(dir);
    await Deno.mkdir(temp.join("elsewhere"));
    await Deno.symlink(temp.join("elsewhere"), dir);
    await assert.rejects(history.load(), /is a symbolic link/);
    await assert.rejects(history.append(["list_groups"]), /is a symbolic link/);
    assert.deepEqual(await namesIn(temp.join("elsewhere")), []);
    await Deno.remove(dir);
    await Deno.mkdir(dir);
  });

  await t.step(`a huge file: only its last ${HISTORY_LIMIT_BYTES} bytes are read`, async () => {
    const filler = `${"x".repeat(99)}\n`; // 100 bytes a line
    await Deno.writeTextFile(
      history.path,
      `oldest\n${filler.repeat((3 * HISTORY_LIMIT_BYTES) / 100)}newest\n`,
    );
    const lines = await history.load();
    assert.equal(lines.length, HISTORY_LINES);
    assert.equal(lines.at(-1), "newest");
    assert.ok(!lines.includes("oldest"));
    // saving keeps the last lines only: the file shrinks to them
    await history.append(["list_groups"]);
    const saved = (await Deno.readTextFile(history.path)).trimEnd().split("\n");
    assert.equal(saved.length, HISTORY_LINES);
    assert.deepEqual(saved.slice(-2), ["newest", "list_groups"]);
  });

  await t.step("a file one line of which fills the bound: no part of a line is taken", async () => {
    await Deno.writeTextFile(history.path, `${"y".repeat(2 * HISTORY_LIMIT_BYTES)}\nlast\n`);
    assert.deepEqual(await history.load(), ["last"]);
  });

  await t.step(
    "binary, controls, over-long lines: only lines a terminal shows as written",
    async () => {
      const bytes = new Uint8Array(64 * 1024);
      crypto.getRandomValues(bytes);
      const text = new TextEncoder().encode(
        "list_groups\nevil \x1b[2J\nrtl \u202e\nlong " + "z".repeat(HISTORY_LINE_MAX_CHARS) +
          "\n\n   \nshow_downloads\n",
      );
      await Deno.writeFile(history.path, new Uint8Array([...bytes, 10, ...text]));
      const lines = await history.load();
      assert.deepEqual(lines.slice(-2), ["list_groups", "show_downloads"]);
      for (const line of lines) {
        assert.ok(!TERMINAL_UNSAFE.test(line), JSON.stringify(line));
        assert.ok(!line.includes("\ufffd") && line.length <= HISTORY_LINE_MAX_CHARS);
      }
      // nor is such a line saved
      await Deno.writeTextFile(history.path, "");
      await history.append(["quit", "x\x1b[31m", "a\nb"]);
      assert.equal(await Deno.readTextFile(history.path), "quit\n");
    },
  );
});
