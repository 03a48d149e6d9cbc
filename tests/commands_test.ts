import assert from "node:assert/strict";
import {
  CommandLineError,
  downloadLine,
  formatSize,
  resolveCommand,
  resumingText,
} from "../peer/commands.ts";
import type { DownloadStatus } from "../peer/file_sharing.ts";

function status(overrides: Partial<DownloadStatus>): DownloadStatus {
  return {
    group: "grp",
    name: "file.iso",
    state: "D",
    pieces_done: 0,
    pieces_total: 100,
    path: "/tmp/file.iso",
    reason: "",
    peers: [],
    activity: "downloading",
    bytes_done: 0,
    bytes_total: 50 * 1024 * 1024,
    down_bps: 0,
    up_bps: 0,
    eta_s: null,
    peers_connected: 0,
    seconds: 0,
    ...overrides,
  };
}

Deno.test("show_downloads lines: [D] [grp] file, [C] [grp] file, [F] [grp] file: reason", () => {
  const MiB = 1024 * 1024;
  // complete: the path, size, time, average rate and who sent it
  assert.equal(
    downloadLine(
      status({
        state: "C",
        pieces_done: 100,
        bytes_done: 64 * MiB,
        bytes_total: 64 * MiB,
        seconds: 3.2,
        eta_s: 0,
        peers: [{ peer: "a", bytes: 64 * MiB, pieces: 128 }],
      }),
    ),
    "[C] [grp] file.iso: downloaded to /tmp/file.iso (64.0 MiB in 3.2 s, 20.0 MiB/s, from 1 peer)",
  );
  assert.equal(
    downloadLine(status({ state: "F", reason: "no peer has it" })),
    "[F] [grp] file.iso: no peer has it",
  );
  // running: the piece count as before, then bytes, rates, time left and peers connected now
  const peers = [{ peer: "a", bytes: 5, pieces: 1 }, { peer: "b", bytes: 0, pieces: 0 }];
  assert.equal(
    downloadLine(
      status({
        pieces_done: 37,
        peers,
        bytes_done: 18.5 * MiB,
        down_bps: 8.1 * MiB,
        up_bps: 512,
        eta_s: 4,
        peers_connected: 2,
      }),
    ),
    "[D] [grp] file.iso 37% (37/100 pieces from 1 peer); 18.5 MiB of 50.0 MiB, down 8.1 MiB/s, " +
      "up 512 B/s, ETA 4 s, 2 peers connected",
  );
  assert.equal(
    downloadLine(status({ pieces_done: 0, reason: "waiting for peers" })),
    "[D] [grp] file.iso 0% (0/100 pieces from 0 peers, waiting for peers); 0 B of 50.0 MiB, " +
      "down 0 B/s, up 0 B/s, ETA unknown, 0 peers connected",
  );
  assert.match(downloadLine(status({ pieces_total: 0 })), /^\[D\] \[grp\] file\.iso 100%/);
  assert.equal(
    downloadLine(status({ pieces_done: 37, activity: "paused", reason: "paused" })),
    "[D] [grp] file.iso 37% (37/100 pieces from 0 peers, paused)" +
      "; 0 B of 50.0 MiB, down 0 B/s, up 0 B/s, ETA unknown, 0 peers connected",
  );
  assert.equal(
    downloadLine(status({ pieces_done: 37, activity: "waiting", reason: "waiting for a peer" })),
    "[D] [grp] file.iso 37% (37/100 pieces from 0 peers, waiting for a peer)" +
      "; 0 B of 50.0 MiB, down 0 B/s, up 0 B/s, ETA unknown, 0 peers connected",
  );
});

Deno.test("a resumed download says how many pieces it kept, in one wording everywhere", () => {
  assert.equal(
    resumingText({ group: "g", name: "f", pieces_done: 188, pieces_total: 400 }),
    'resuming download of "f" in group "g": 188 of 400 pieces already verified',
  );
});

Deno.test("sizes read as people write them", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(1023), "1023 B");
  assert.equal(formatSize(1024), "1.0 KiB");
  assert.equal(formatSize(64 * 1024 * 1024), "64.0 MiB");
  assert.equal(formatSize(1.5 * 1024 ** 3), "1.5 GiB");
});

Deno.test("command lines resolve to commands with their arity checked", () => {
  assert.equal(resolveCommand(["download_file", "g", "f", "d"]).command.name, "download_file");
  assert.equal(
    resolveCommand(["requests", "list_requests", "g"]).command.name,
    "requests list_requests",
  );
  assert.equal(resolveCommand(["logout"]).command.name, "logout");
  assert.equal(resolveCommand(["logout", "--all"]).command.name, "logout --all");
  assert.equal(resolveCommand(["end_session", "0a1b2c3d"]).command.name, "end_session");
  assert.deepEqual(resolveCommand(["cancel_download", "g", "f"]).args, ["g", "f"]);
  assert.deepEqual(resolveCommand(["cancel_download", "g", "f", "--delete"]).args, [
    "g",
    "f",
    "--delete",
  ]);
  // a file may be called --keep: only the word after the parameters is a flag
  assert.deepEqual(resolveCommand(["cancel_download", "g", "--keep"]).args, ["g", "--keep"]);
  for (
    const [words, usage] of [
      [
        ["download_file", "g", "f"],
        "usage: download_file <group_id> <file_name> <destination_path>",
      ],
      [["show_downloads", "x"], "usage: show_downloads"],
      [["requests", "list", "g"], "usage: requests list_requests <group_id>"],
      [["logout", "--everywhere"], "usage: logout"],
      [["logout", "--all", "now"], "usage: logout --all"],
      [["end_session"], "usage: end_session <session_id>"],
      [
        ["cancel_download", "g", "f", "--later"],
        "usage: cancel_download <group_id> <file_name> [--keep|--delete]",
      ],
      [["cancel_download", "g"], "usage: cancel_download <group_id> <file_name> [--keep|--delete]"],
      [["pause_download", "g", "f", "--keep"], "usage: pause_download <group_id> <file_name>"],
    ] as const
  ) {
    assert.throws(() => resolveCommand([...words]), (error: Error) => {
      assert.ok(error instanceof CommandLineError);
      assert.equal(error.message, usage);
      return true;
    });
  }
});
