/**
 * How transfers read to a person: sizes, rates, times left, bars, the detail of a
 * `show_downloads` line, `show_uploads`, the prompt's summary and the frames of `watch`.
 * Pure text from status rows (peer/file_sharing.ts); it never writes to a terminal.
 *
 * @module
 */

import type { DownloadStatus, UploadStatus } from "./file_sharing.ts";

/** A size for people: bytes below 1 KiB, else KiB, MiB or GiB with one decimal. */
export function formatSize(bytes: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A rate for people: `8.1 MiB/s`, `0 B/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/** A time left for people: `42 s`, `3 min 05 s`, `2 h 07 min`. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.ceil(seconds));
  if (whole < 60) return `${whole} s`;
  const two = (n: number) => String(n).padStart(2, "0");
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${two(whole % 60)} s`;
  return `${Math.floor(whole / 3600)} h ${two(Math.floor((whole % 3600) / 60))} min`;
}

/** `[#####-----]`: `fraction` (0 to 1) of `width` cells filled. */
export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Peers that sent a download something. */
function contributors(download: Pick<DownloadStatus, "peers">): number {
  return download.peers.filter((peer) => peer.bytes > 0).length;
}

/** What a finished download took: `64.0 MiB in 3.2 s, 20.0 MiB/s, from 2 peers`. */
export function completionDetail(size: number, seconds: number, peers: number): string {
  const rate = seconds > 0 ? size / seconds : 0;
  return `${formatSize(size)} in ${seconds.toFixed(1)} s, ${formatRate(rate)}, from ${
    plural(peers, "peer")
  }`;
}

/** The end of a `[C]` line: `: downloaded to PATH (64.0 MiB in 3.2 s, 20.0 MiB/s, from 2 peers)` */
export function completedDetail(download: DownloadStatus): string {
  return `: downloaded to ${download.path} (${
    completionDetail(download.bytes_total, download.seconds, contributors(download))
  })`;
}

/**
 * The live part of a `[D]` line:
 * `18.5 MiB of 50.0 MiB, down 8.1 MiB/s, up 0 B/s, ETA 4 s, 1 peer connected`.
 */
export function transferDetail(download: DownloadStatus): string {
  const eta = download.eta_s === null ? "unknown" : formatDuration(download.eta_s);
  return `${formatSize(download.bytes_done)} of ${formatSize(download.bytes_total)}, down ${
    formatRate(download.down_bps)
  }, up ${formatRate(download.up_bps)}, ETA ${eta}, ${
    plural(download.peers_connected, "peer")
  } connected`;
}

/** `[crew] big.bin` (and every group a file is shared in). */
function uploadHead(upload: UploadStatus): string {
  const still = upload.complete ? "" : " (still downloading)";
  return `[${upload.groups.join(" ")}] ${upload.name}${still}`;
}

/** `show_uploads` for people: each file, then each peer it goes to now. */
export function uploadsText(uploads: UploadStatus[]): string {
  if (uploads.length === 0) return "not serving any file";
  const lines: string[] = [];
  for (const upload of uploads) {
    const now = upload.peers.length === 0
      ? "nobody fetches it now"
      : `${plural(upload.peers.length, "peer")} fetching it now`;
    lines.push(
      `${uploadHead(upload)}: sent ${formatSize(upload.bytes_sent)}, up ${
        formatRate(upload.up_bps)
      }, ${now}`,
    );
    for (const peer of upload.peers) {
      lines.push(
        `  ${peer.user} at ${peer.address}: sent ${formatSize(peer.bytes_sent)}, up ${
          formatRate(peer.up_bps)
        }`,
      );
    }
  }
  return lines.join("\n");
}

/** What the transfers of this client are now, as the live views see them. */
export interface Transfers {
  downloads: DownloadStatus[];
  uploads: UploadStatus[];
}

/**
 * The prompt's summary of running transfers: `1↓ 37% 8.1 MiB/s` for downloads (all of them
 * together), `2↑ 1.0 MiB/s` for peers served now; empty when nothing runs.
 */
export function promptSummary({ downloads, uploads }: Transfers): string {
  const parts: string[] = [];
  // a paused download moves nothing: it is not a running transfer
  const running = downloads.filter((download) =>
    download.state === "D" && download.activity !== "paused"
  );
  if (running.length > 0) {
    const total = running.reduce((sum, download) => sum + download.bytes_total, 0);
    const done = running.reduce((sum, download) => sum + download.bytes_done, 0);
    const rate = running.reduce((sum, download) => sum + download.down_bps, 0);
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
    parts.push(`${running.length}↓ ${percent}% ${formatRate(rate)}`);
  }
  const served = uploads.reduce((sum, upload) => sum + upload.peers.length, 0);
  if (served > 0) {
    const rate = uploads.reduce((sum, upload) => sum + upload.up_bps, 0);
    parts.push(`${served}↑ ${formatRate(rate)}`);
  }
  return parts.join(" ");
}

/** Cuts a line to `columns` characters, so that a frame never wraps (and its height is known). */
function fit(line: string, columns: number): string {
  const chars = [...line];
  return chars.length <= columns ? line : `${chars.slice(0, Math.max(0, columns - 1)).join("")}…`;
}

/**
 * One frame of `watch`: every download with a bar (and a bar per peer: its share of the file),
 * then every file served to someone now with a line per peer. Lines are cut to `columns`.
 */
export function watchFrame({ downloads, uploads }: Transfers, columns: number): string[] {
  const lines: string[] = [];
  const barWidth = Math.max(10, Math.min(30, columns - 60));
  for (const download of downloads) {
    const head = `[${download.state}] [${download.group}] ${download.name}`;
    if (download.state === "F") {
      lines.push(`${head}: ${download.reason}`);
      continue;
    }
    const fraction = download.bytes_total === 0 ? 1 : download.bytes_done / download.bytes_total;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    if (download.state === "C") {
      lines.push(`${head} ${progressBar(1, barWidth)} ${percent}${completedDetail(download)}`);
      continue;
    }
    const waiting = download.reason ? ` (${download.reason})` : "";
    lines.push(
      `${head} ${progressBar(fraction, barWidth)} ${percent} ${transferDetail(download)}${waiting}`,
    );
    for (const peer of download.peers) {
      const share = download.bytes_total === 0 ? 0 : peer.bytes / download.bytes_total;
      lines.push(
        `    from ${peer.peer.padEnd(21)} ${progressBar(share, barWidth)} ${
          formatSize(peer.bytes)
        }`,
      );
    }
  }
  const served = uploads.filter((upload) => upload.peers.length > 0);
  for (const upload of served) {
    lines.push(
      `[U] ${uploadHead(upload)}: up ${formatRate(upload.up_bps)}, sent ${
        formatSize(upload.bytes_sent)
      }`,
    );
    for (const peer of upload.peers) {
      lines.push(
        `    to ${peer.user} at ${peer.address}: up ${formatRate(peer.up_bps)}, sent ${
          formatSize(peer.bytes_sent)
        }`,
      );
    }
  }
  const idle = uploads.length - served.length;
  if (lines.length === 0 && idle === 0) lines.push("no transfers");
  else if (idle > 0) {
    lines.push(
      `serving ${plural(idle, served.length > 0 ? "more file" : "file")} nobody fetches now`,
    );
  }
  return lines.map((line) => fit(line, columns));
}
