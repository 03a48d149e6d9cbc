/**
 * `deno task demo [--size MiB]`: the whole product in one run, on loopback, in a temporary
 * directory. A tracker and four clients start; users and a group are made through the real
 * shell; three clients share a generated file and the fourth downloads it from all three
 * with live progress per peer; the result is checked by SHA-1, each peer's part and the
 * throughput are printed, and everything is cleaned up. Exit 0 when the file came out right.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type DownloadLine,
  freePort,
  JsonShell,
  sha1OfFile,
  TempDir,
  TrackerProcess,
  writeRandomFile,
} from "./processes.ts";

const GROUP = "demo";
const FILE = "demo.bin";
const SEEDERS = ["seeder1", "seeder2", "seeder3"];
const LEECHER = "leecher";
const MiB = 1 << 20;
/** Generous bound on any one step, so a broken run ends instead of hanging. */
const STEP_LIMIT_MS = 10 * 60_000;

const USAGE = `usage: deno task demo [--size MiB]
  starts a tracker and four clients on 127.0.0.1, shares a generated file (default 64 MiB)
  from three of them and downloads it on the fourth, then checks it and cleans up`;

interface Client {
  name: string;
  shell: JsonShell;
  home: string;
  port: number;
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** Prints the live per-peer lines, redrawn in place on a terminal, once a second on a pipe. */
class ProgressView {
  readonly #interactive = Deno.stdout.isTerminal();
  readonly #names: Map<string, string>;
  readonly #size: number;
  #drawnLines = 0;
  #lastPrintAt = 0;

  constructor(names: Map<string, string>, size: number) {
    this.#names = names;
    this.#size = size;
  }

  show(download: DownloadLine, final = false): void {
    const now = performance.now();
    if (!this.#interactive && !final && now - this.#lastPrintAt < 1000) return;
    this.#lastPrintAt = now;
    const done = download.pieces_total === 0 ? 1 : download.pieces_done / download.pieces_total;
    const lines = SEEDERS.map((name) => {
      const port = [...this.#names].find(([, who]) => who === name)?.[0];
      const bytes = download.peers.find((peer) => peer.peer === port)?.bytes ?? 0;
      return `  ${name.padEnd(8)} ${bar(bytes / this.#size)} ${mib(bytes).padStart(10)}`;
    });
    lines.push(
      `  ${"total".padEnd(8)} ${bar(done)} ${`${Math.floor(done * 100)}%`.padStart(10)}` +
        (download.reason ? `  ${download.reason}` : ""),
    );
    if (this.#interactive && this.#drawnLines > 0) {
      Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[${this.#drawnLines}A\x1b[J`));
    }
    console.log(lines.join("\n"));
    this.#drawnLines = this.#interactive ? lines.length : 0;
  }
}

async function startClient(
  tracker: TrackerProcess,
  dir: TempDir,
  name: string,
  resources: AsyncDisposableStack,
): Promise<Client> {
  const home = dir.join(name);
  await Deno.mkdir(home);
  const port = freePort();
  const shell = resources.use(JsonShell.start(tracker.port, {
    cwd: home,
    peerPort: port,
    waitLimitMs: STEP_LIMIT_MS,
    // pinned up front, as a user told the fingerprint by the tracker's operator would
    extraArgs: tracker.fingerprint ? ["--tracker-fingerprint", tracker.fingerprint] : [],
  }));
  await shell.ok(`create_user ${name} pw-${name}`);
  await shell.ok(`login ${name} pw-${name}`);
  return { name, shell, home, port };
}

/**
 * Runs the demo; every process and the directory go on `resources`, which the caller
 * disposes whether the demo finishes, fails or is interrupted.
 */
async function runDemo(sizeMiB: number, resources: AsyncDisposableStack): Promise<void> {
  const size = Math.round(sizeMiB * MiB);
  const dir = resources.use(await TempDir.create());
  const tracker = resources.use(await TrackerProcess.start(dir.join("tracker.db")));
  console.log(`swarmshare demo in ${dir.path}`);
  console.log(`  tracker  127.0.0.1:${tracker.port}  fingerprint ${tracker.fingerprint}`);
  console.log(
    "  every link is encrypted (TLS 1.3): clients accept the tracker only with that " +
      "fingerprint, and peers only with the certificates the tracker vouches for",
  );

  const clients: Client[] = [];
  {
    for (const name of [...SEEDERS, LEECHER]) {
      const client = await startClient(tracker, dir, name, resources);
      clients.push(client);
      console.log(`  ${name.padEnd(8)} 127.0.0.1:${client.port}`);
    }
    const [owner, ...others] = clients;
    await owner.shell.ok(`create_group ${GROUP}`);
    for (const client of others) {
      await client.shell.ok(`join_group ${GROUP}`);
      await owner.shell.ok(`accept_request ${GROUP} ${client.name}`);
    }
    console.log(`users ${clients.map((c) => c.name).join(", ")} are members of group "${GROUP}"`);

    const original = `${owner.home}/${FILE}`;
    const sha1 = await writeRandomFile(original, size);
    for (const client of clients.slice(1, SEEDERS.length)) {
      await Deno.copyFile(original, `${client.home}/${FILE}`);
    }
    const hashStarted = performance.now();
    for (const client of clients.slice(0, SEEDERS.length)) {
      await client.shell.ok(`upload_file ${FILE} ${GROUP}`);
    }
    const hashSeconds = (performance.now() - hashStarted) / 1000 / SEEDERS.length;
    console.log(
      `${FILE} (${mib(size)}, sha1 ${sha1}) shared by ${SEEDERS.join(", ")} ` +
        `(hashing ${((size / MiB) / hashSeconds).toFixed(0)} MiB/s)`,
    );
    const leecher = clients[clients.length - 1];
    const [listed] = await leecher.shell.ok(`list_files ${GROUP}`) as { seeders: number }[];
    console.log(`list_files ${GROUP}: ${listed.seeders} seeders online`);

    const target = `${leecher.home}/downloads`;
    await Deno.mkdir(target);
    const names = new Map(clients.map((client) => [`127.0.0.1:${client.port}`, client.name]));
    const view = new ProgressView(names, size);
    console.log(`${LEECHER}: download_file ${GROUP} ${FILE} downloads/`);
    const started = performance.now();
    await leecher.shell.ok(`download_file ${GROUP} ${FILE} ${target}`);
    let status: DownloadLine;
    while (true) {
      [status] = await leecher.shell.ok("show_downloads") as DownloadLine[];
      if (status.state !== "D") break;
      view.show(status);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const seconds = (performance.now() - started) / 1000;
    view.show(status, true);
    if (status.state === "F") throw new Error(`the download failed: ${status.reason}`);

    const downloaded = await sha1OfFile(status.path);
    if (downloaded !== sha1) throw new Error(`SHA-1 mismatch: got ${downloaded}, want ${sha1}`);
    console.log(
      `complete: SHA-1 verified, ${mib(size)} in ${seconds.toFixed(2)} s = ` +
        `${(size / 1e6 / seconds).toFixed(0)} MB/s`,
    );
    for (const peer of status.peers) {
      const share = size === 0 ? 0 : (peer.bytes / size) * 100;
      console.log(
        `  ${(names.get(peer.peer) ?? peer.peer).padEnd(8)} ${mib(peer.bytes).padStart(10)} ` +
          `${share.toFixed(0).padStart(3)}%  ${peer.pieces} pieces`,
      );
    }
  }
  // end the shells' input so they log out and exit on their own before anything is killed
  for (const client of clients) await client.shell.quit().catch(() => {});
}

async function main(args: string[]): Promise<number> {
  let sizeMiB: number;
  try {
    const { values } = parseArgs({
      args,
      options: { size: { type: "string", default: "64" }, help: { type: "boolean" } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    sizeMiB = Number(values.size);
    if (!Number.isFinite(sizeMiB) || sizeMiB < 0) throw new Error(`--size must be a number of MiB`);
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const interrupted = Promise.withResolvers<"interrupted">();
  const onSignal = () => interrupted.resolve("interrupted");
  Deno.addSignalListener("SIGINT", onSignal);
  const resources = new AsyncDisposableStack();
  try {
    const outcome = await Promise.race([runDemo(sizeMiB, resources), interrupted.promise]);
    if (outcome === "interrupted") {
      console.error("error: interrupted; cleaning up");
      return 130;
    }
    return 0;
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  } finally {
    await resources.disposeAsync();
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
