/**
 * The command line of both programs: usage errors are one `error:` line with a hint and
 * exit 2, startup failures exit 1 with an `error:` line, signals stop the tracker with its
 * database consistent.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Program } from "../scripts/processes.ts";
import { runMain, runScript, TempDir, TrackerProcess, usersInGroup } from "./harness.ts";

Deno.test("argv: wrong or missing arguments are one error line on stderr, exit 2", async (t) => {
  const cases: [string, string[]][] = [
    ["no program", []],
    ["unknown program", ["serve", "127.0.0.1", "1"]],
    ["server without port", ["server", "127.0.0.1"]],
    ["server port not a number", ["server", "127.0.0.1", "http"]],
    ["server port out of range", ["server", "127.0.0.1", "70000"]],
    ["server unknown option", ["server", "127.0.0.1", "0", "--bogus"]],
    ["server bad idle timeout", ["server", "127.0.0.1", "0", "--idle-timeout-ms", "-5"]],
    ["server bad session idle days", ["server", "127.0.0.1", "0", "--session-idle-days", "0"]],
    ["server login grace of zero", ["server", "127.0.0.1", "0", "--login-grace-ms", "0"]],
    ["server login grace too long", ["server", "127.0.0.1", "0", "--login-grace-ms", "86400001"]],
    ["client with three arguments", ["client", "127.0.0.1", "0", "127.0.0.1"]],
    ["client with five arguments", ["client", "127.0.0.1", "0", "127.0.0.1", "1", "2"]],
    ["client bad port", ["client", "127.0.0.1", "x", "127.0.0.1", "1"]],
    ["client unknown option", ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--yaml"]],
    ["server --tls-cert without --tls-key", ["server", "127.0.0.1", "0", "--tls-cert", "c.pem"]],
    ["server --tls-key without --tls-cert", ["server", "127.0.0.1", "0", "--tls-key", "k.pem"]],
    [
      "server plaintext with a certificate",
      ["server", "127.0.0.1", "0", "--insecure-plaintext", "--tls-cert", "c", "--tls-key", "k"],
    ],
    ...[
      "abc",
      "SHA256:" + "0".repeat(63),
      "SHA256:" + "g".repeat(64),
      "SHA1:" + "0".repeat(64),
      "0".repeat(65),
      "",
    ].map((bad): [string, string[]] => [
      `client bad --tracker-fingerprint "${bad}"`,
      ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--tracker-fingerprint", bad],
    ]),
    ...["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":5000", "::1:5000", "[::1]", "a b:1", ""]
      .map((bad): [string, string[]] => [
        `client bad --public-addr "${bad}"`,
        ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--public-addr", bad],
      ]),
    ...["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":5000", "::1:5000", "[::1]", "a b:1", ""]
      .map((bad): [string, string[]] => [
        `client bad --tracker "${bad}"`,
        [
          "client",
          "127.0.0.1",
          "0",
          "127.0.0.1",
          "1",
          "--tracker",
          "127.0.0.1:2",
          "--tracker",
          bad,
        ],
      ]),
    ["client --tracker without a value", [
      "client",
      "127.0.0.1",
      "0",
      "127.0.0.1",
      "1",
      "--tracker",
    ]],
    [
      "client --tracker naming the seed",
      ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--tracker", "127.0.0.1:1"],
    ],
    [
      "client --tracker given twice",
      ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--tracker", "[::1]:2", "--tracker=[0::1]:2"],
    ],
    [
      "client --tracker 17 times",
      [
        "client",
        "127.0.0.1",
        "0",
        "127.0.0.1",
        "1",
        ...Array.from({ length: 17 }, (_, i) => ["--tracker", `127.0.0.1:${i + 2}`]).flat(),
      ],
    ],
  ];
  for (const [name, args] of cases) {
    await t.step(name, async () => {
      const { code, stdout, stderr } = await runMain(args);
      assert.equal(code, 2);
      assert.deepEqual(stdout, []);
      assert.equal(stderr.length, 1, stderr.join("\n"));
      const hint = ["server", "client"].includes(args[0]) ? `${args[0]} --help` : "--help";
      assert.ok(stderr[0].startsWith("error: "), stderr[0]);
      assert.ok(stderr[0].endsWith(` (try "${hint}")`), stderr[0]);
    });
  }
});

Deno.test("argv: option mistakes are said in our words, with the nearest option", async (t) => {
  const server = ["server", "127.0.0.1", "0"];
  const client = ["client", "127.0.0.1", "0", "127.0.0.1", "1"];
  const cases: [string[], string][] = [
    [[...server, "--bogus"], 'unknown option "--bogus" (try "server --help")'],
    [[...server, "--db-path", "x"], 'unknown option "--db-path"; did you mean --db?'],
    [
      [...server, "--idle-timeout", "5"],
      'unknown option "--idle-timeout"; did you mean --idle-timeout-ms?',
    ],
    [[...client, "--stat-dir", "x"], 'unknown option "--stat-dir"; did you mean --state-dir?'],
    [[...client, "--jsno"], 'unknown option "--jsno"; did you mean --json?'],
    [[...client, "--db", "x"], 'unknown option "--db" (try "client --help")'],
    [[...client, "-x"], 'unknown option "-x"'],
    [[...server, "--db"], "--db needs a value"],
    [[...server, "--db", "--verbose"], "--db needs a value"],
    [[...client, "--json=yes"], "--json takes no value"],
    [[...server, "--db", "a", "--db", "b"], "--db is given twice"],
    [[...server, "--quiet", "--verbose", "--db", "x"], "--quiet and --verbose cannot go together"],
    [[...server, "--db", "~nobody/t.db"], '--db: cannot expand "~nobody"'],
    [["serve", "127.0.0.1", "0"], 'unknown program "serve"; did you mean server?'],
    [["server", "127.0.0.1"], "server takes <ip> <port>, not 1 argument"],
  ];
  for (const [args, expected] of cases) {
    await t.step(args.slice(args[0] === "server" ? 3 : 5).join(" ") || args.join(" "), async () => {
      const { code, stderr } = await runMain(args);
      assert.equal(code, 2);
      assert.equal(stderr.length, 1, stderr.join("\n"));
      assert.ok(stderr[0].startsWith("error: "), stderr[0]);
      assert.ok(stderr[0].includes(expected), `${stderr[0]} lacks ${expected}`);
      // nothing of node:util's parseArgs wording
      assert.doesNotMatch(stderr[0], /ERR_PARSE_ARGS|positional|To specify/);
    });
  }
});

Deno.test("argv: --help, -h, --version and -V of each program", async (t) => {
  const first = { server: "usage: server <ip> <port>", client: "usage: client <client_ip>" };
  for (const program of ["server", "client"] as const) {
    const other = program === "server" ? "client" : "server";
    for (const flag of ["--help", "-h"]) {
      await t.step(`${program} ${flag}`, async () => {
        const help = await runMain([program, "127.0.0.1", flag]);
        assert.equal(help.code, 0);
        assert.ok(help.stdout[0].startsWith(first[program]), help.stdout[0]);
        assert.ok(!help.stdout.some((line) => line.includes(first[other])), "the other's usage");
        assert.ok(help.stdout.some((line) => line.includes("--log FILE")));
        assert.ok(help.stdout.every((line) => line.length <= 80), "wider than 80 columns");
      });
    }
    for (const flag of ["--version", "-V"]) {
      await t.step(`${program} ${flag}`, async () => {
        const version = await runMain([program, flag]);
        assert.equal(version.code, 0);
        assert.match(version.stdout[0], /^swarmshare \d+\.\d+\.\d+$/);
      });
    }
  }
  await t.step("--help without a program: both", async () => {
    for (const flag of ["--help", "-h"]) {
      const help = await runMain([flag]);
      assert.equal(help.code, 0);
      assert.ok(help.stdout.some((line) => line.startsWith(first.server)));
      assert.ok(help.stdout.some((line) => line.startsWith(first.client)));
    }
  });
});

Deno.test("startup: a port in use is an error and exit 1", async (t) => {
  await using dir = await TempDir.create();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(taken.addr.port);

  await t.step("client peer port", async () => {
    const { code, stderr } = await runMain(["client", "127.0.0.1", port, "127.0.0.1", "1"]);
    assert.equal(code, 1);
    assert.deepEqual(stderr, [`error: cannot serve peers on 127.0.0.1:${port}: address in use`]);
  });

  await t.step("tracker port", async () => {
    const { code, stderr } = await runMain(["server", "127.0.0.1", port, "--db", dir.join("t.db")]);
    assert.equal(code, 1);
    assert.deepEqual(stderr, [`error: cannot listen on 127.0.0.1:${port}: address in use`]);
  });
});

Deno.test("startup: a database file that is not the tracker's is refused, untouched", async (t) => {
  await using dir = await TempDir.create();

  await t.step("garbage bytes", async () => {
    const path = dir.join("garbage.db");
    const garbage = new TextEncoder().encode("this is not a database\n".repeat(200));
    await Deno.writeFile(path, garbage);
    const { code, stderr } = await runMain(["server", "127.0.0.1", "0", "--db", path]);
    assert.equal(code, 1);
    assert.match(stderr.join("\n"), /^error: cannot (open|use) database .*garbage\.db/);
    assert.deepEqual(await Deno.readFile(path), garbage);
  });

  await t.step("a schema newer than this build", async () => {
    const path = dir.join("future.db");
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 999");
    db.close();
    const { code, stderr } = await runMain(["server", "127.0.0.1", "0", "--db", path]);
    assert.equal(code, 1);
    assert.match(stderr.join("\n"), /schema version 999 is newer/);
  });
});

Deno.test("signals: SIGINT and SIGTERM close the tracker with its state saved", async () => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  for (const [signal, user] of [["SIGINT", "first"], ["SIGTERM", "second"]] as const) {
    await using tracker = await TrackerProcess.start(dbPath);
    await runScript(tracker.port, [
      `create_user ${user} pw`,
      `login ${user} pw`,
      `create_group g-${user}`,
    ]);
    tracker.kill(signal);
    assert.equal((await tracker.exited()).code, 0, `${signal} exit code`);
  }
  const db = new DatabaseSync(dbPath);
  try {
    assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    const groups = db.prepare("SELECT id, owner_id FROM groups ORDER BY id").all();
    assert.deepEqual(groups.map((row) => ({ ...row })), [
      { id: "g-first", owner_id: "first" },
      { id: "g-second", owner_id: "second" },
    ]);
  } finally {
    db.close();
  }
  // the WAL was checkpointed on close: nothing left only in the log
  const wal = await Deno.stat(`${dbPath}-wal`).catch(() => undefined);
  assert.ok(wal === undefined || wal.size === 0);
});

Deno.test("passwords are stored only as salted scrypt hashes", async () => {
  await using dir = await TempDir.create();
  const dbPath = dir.join("tracker.db");
  const password = "correct-horse-battery";
  {
    await using tracker = await TrackerProcess.start(dbPath);
    await runScript(tracker.port, [`create_user u1 ${password}`, `create_user u2 ${password}`]);
    await tracker.stop();
  }
  const bytes = new TextDecoder("latin1").decode(await Deno.readFile(dbPath));
  assert.ok(!bytes.includes(password), "the password is in the database file");
  const db = new DatabaseSync(dbPath);
  try {
    const hashes = db.prepare("SELECT password_hash FROM users ORDER BY id").all()
      .map((row) => String(row.password_hash));
    for (const hash of hashes) {
      assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    }
    assert.notEqual(hashes[0], hashes[1], "same password, same hash: no salt");
  } finally {
    db.close();
  }
});

Deno.test("startup: unusable identity files are errors naming the file, exit 1", async (t) => {
  await using dir = await TempDir.create();

  await t.step("client --state-dir that is a file", async () => {
    const path = dir.join("not-a-dir");
    await Deno.writeTextFile(path, "x");
    const { code, stderr } = await runMain(
      ["client", "127.0.0.1", "0", "127.0.0.1", "1", "--state-dir", path],
    );
    assert.equal(code, 1);
    assert.match(stderr[0], /^error: .*not-a-dir/);
  });

  await t.step("tracker --tls-cert that does not exist", async () => {
    const { code, stderr } = await runMain([
      "server",
      "127.0.0.1",
      "0",
      "--db",
      dir.join("t.db"),
      "--tls-cert",
      dir.join("missing.pem"),
      "--tls-key",
      dir.join("missing.key"),
    ]);
    assert.equal(code, 1);
    assert.match(stderr.join("\n"), /^error: .*missing\.pem/);
  });

  await t.step("tracker --tls-cert without a certificate in it", async () => {
    await Deno.writeTextFile(dir.join("empty.pem"), "hello\n");
    await Deno.writeTextFile(dir.join("key.pem"), "hello\n");
    const { code, stderr } = await runMain([
      "server",
      "127.0.0.1",
      "0",
      "--db",
      dir.join("t2.db"),
      "--tls-cert",
      dir.join("empty.pem"),
      "--tls-key",
      dir.join("key.pem"),
    ]);
    assert.equal(code, 1);
    assert.match(stderr.join("\n"), /^error: .*empty\.pem/);
  });
});

Deno.test("startup: the tracker prints its fingerprint on the line after it listens", async () => {
  await using dir = await TempDir.create();
  await using tracker = await TrackerProcess.start(dir.join("t.db"));
  assert.match(tracker.fingerprint ?? "", /^SHA256:[0-9a-f]{64}$/);
  const lines = tracker.stdout.all;
  assert.match(lines[0], /^tracker listening on 127\.0\.0\.1:\d+$/);
  assert.equal(lines[1], `tracker fingerprint ${tracker.fingerprint}`);
});

Deno.test(
  "signals: started through deno task as a terminal's job, the tracker stops cleanly " +
    "however often the signal comes again while it stops",
  async (t) => {
    const root = new URL("..", import.meta.url).pathname;
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      await t.step(signal, async () => {
        await using dir = await TempDir.create();
        // setsid: deno task and the tracker under it are a process group of their own, as a
        // job of a terminal is; Ctrl-C signals the whole group
        await using task = new Program(
          [Deno.execPath(), "task", "-q", "server", "127.0.0.1", "0", "--db", dir.join("t.db")],
          { executable: "setsid", cwd: root },
        );
        const listening = await task.stdout.until(
          (line) => line.startsWith("tracker listening on "),
          "the tracker to listen",
        );
        const port = Number(listening.split(":").at(-1));
        // clients connected and logged in: the clean stop has connections to close
        const shells = await usersInGroup(port, ["sig1", "sig2"], "g");
        try {
          const group = -task.pid;
          Deno.kill(group, signal);
          // the wrappers pass the signal on (npm exec, deno task): it comes again, and again,
          // until the tracker has exited; each must find it still listening
          let repeats = 0;
          const ended = task.stdout.done.then(() => true);
          const turn = () => new Promise<false>((resolve) => setTimeout(resolve, 0, false));
          do {
            try {
              Deno.kill(group, signal);
              repeats++;
            } catch {
              break; // the group is gone
            }
          } while (!await Promise.race([ended, turn()]));
          await task.stdout.done;
          assert.ok(
            task.stdout.all.some((line) => line.endsWith(`tracker stopping (${signal})`)),
            task.stdout.all.join("\n"),
          );
          assert.ok(repeats > 0, "no signal came again while the tracker stopped");
          assert.equal(task.stdout.all.at(-1), "tracker stopped", task.stdout.all.join("\n"));
          // -q: deno task's own "Task server ..." line is not shown
          assert.ok(
            !task.stderr.all.some((line) => /Task\b/.test(line)),
            task.stderr.all.join("\n"),
          );
        } finally {
          for (const shell of shells) await shell[Symbol.asyncDispose]();
        }
      });
    }
  },
);
