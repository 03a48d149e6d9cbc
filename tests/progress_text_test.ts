import assert from "node:assert/strict";
import type { DownloadStatus, UploadStatus } from "../peer/file_sharing.ts";
import { formatDuration, promptSummary, watchFrame } from "../peer/progress_text.ts";

const MiB = 1024 * 1024;

function download(overrides: Partial<DownloadStatus>): DownloadStatus {
  return {
    group: "grp",
    name: "a.bin",
    state: "D",
    pieces_done: 0,
    pieces_total: 100,
    path: "/tmp/a.bin",
    reason: "",
    peers: [],
    activity: "downloading",
    bytes_done: 0,
    bytes_total: 100 * MiB,
    down_bps: 0,
    up_bps: 0,
    eta_s: null,
    peers_connected: 0,
    seconds: 1,
    ...overrides,
  };
}

const upload: UploadStatus = {
  groups: ["grp"],
  name: "b.bin",
  complete: true,
  bytes_sent: 3 * MiB,
  up_bps: MiB,
  peers: [{
    user: "bob",
    address: "127.0.0.1:5000",
    group: "grp",
    bytes_sent: 3 * MiB,
    up_bps: MiB,
  }],
};

Deno.test("progress text", async (t) => {
  await t.step("the prompt sums up running downloads and peers served; nothing when idle", () => {
    assert.equal(promptSummary({ downloads: [], uploads: [] }), "");
    assert.equal(
      promptSummary({
        downloads: [
          download({ bytes_done: 37 * MiB, down_bps: 8.1 * MiB }),
          download({ state: "C", bytes_done: 100 * MiB }),
        ],
        uploads: [upload, { ...upload, peers: [], up_bps: 0 }],
      }),
      "1↓ 37% 8.1 MiB/s 1↑ 1.0 MiB/s",
    );
  });

  await t.step("times left", () => {
    assert.deepEqual([formatDuration(4.2), formatDuration(185), formatDuration(7620)], [
      "5 s",
      "3 min 05 s",
      "2 h 07 min",
    ]);
  });

  await t.step("watch frames: a bar per download and per peer, lines cut to the width", () => {
    const frame = watchFrame({
      downloads: [
        download({ bytes_done: 50 * MiB, peers: [{ peer: "h:1", bytes: 25 * MiB, pieces: 50 }] }),
      ],
      uploads: [upload],
    }, 72);
    assert.equal(frame.length, 4);
    assert.match(frame[0], /^\[D\] \[grp\] a\.bin \[#{6}-{6}\] {2}50% 50\.0 MiB of 100\.0 MiB/);
    assert.match(frame[1], /^ {4}from h:1 +\[#{3}-{9}\] 25\.0 MiB$/);
    assert.equal(frame[2], "[U] [grp] b.bin: up 1.0 MiB/s, sent 3.0 MiB");
    assert.equal(frame[3], "    to bob at 127.0.0.1:5000: up 1.0 MiB/s, sent 3.0 MiB");
    assert.ok(frame.every((line) => [...line].length <= 72), JSON.stringify(frame));
    assert.deepEqual(watchFrame({ downloads: [], uploads: [] }, 80), ["no transfers"]);
  });
});
