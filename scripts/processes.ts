/**
 * Drives the real programs as a user's scripts would: a tracker process and client shells
 * fed on standard input (`--json`), on 127.0.0.1, in temporary directories. Shared by the
 * tests, the demo and the benchmark. Every wait is for an event (a line of output, an exit);
 * time limits only bound a broken run. Everything here is disposable with `await using`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hashFile } from "../lib/hash.ts";
import type { DownloadStatus } from "../peer/file_sharing.ts";
import { RUNTIME_FLAGS, TRACKER_RUNTIME_FLAGS } from "./runtime_flags.ts";

/** The program under test, run exactly as the README runs it. */
export const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** How long any single wait may take, by default, before the run is declared stuck. */
const WAIT_LIMIT_MS = 30_000;

/**
 * Temporary directories and programs not yet disposed of, newest last: what
 * `runInterruptible` disposes of when a script is interrupted. At most what one script made
 * and has not let go of (a swarm's programs and directories).
 */
const live = new Set<AsyncDisposable>();

/**
 * Runs a script's `main` so that SIGINT (Ctrl-C) and SIGTERM end it after disposing of every
 * `TempDir` and `Program` still live, newest first: its programs are stopped and its
 * directories removed, which hold its files, their downloads and the programs' state (a
 * stopped benchmark left them all in /tmp). Exits with `main`'s status (0 if it returns
 * none), or 130 after SIGINT and 143 after SIGTERM, whatever `main` does meanwhile (its
 * programs stop under it); a second signal changes nothing. For scripts run by hand (the
 * benchmarks); tests dispose of their own.
 */
export async function runInterruptible(
  name: string,
  main: () => Promise<number | void>,
): Promise<never> {
  let cleanup: Promise<never> | undefined;
  for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, () => {
      cleanup ??= (async () => {
        console.error(`${name}: interrupted; stopping its programs and removing its files`);
        for (const resource of [...live].reverse()) {
          try {
            await resource[Symbol.asyncDispose]();
          } catch {
            // the next one still goes
          }
        }
        Deno.exit(status);
      })();
    });
  }
  let status = 0;
  try {
    status = await main() ?? 0;
  } catch (error) {
    if (!cleanup) throw error;
  }
  if (cleanup) await cleanup;
  Deno.exit(status);
}

/** A temporary directory removed on dispose. */
export class TempDir implements AsyncDisposable {
  private constructor(readonly path: string) {
    live.add(this);
  }

  /** A new directory named `prefix` and random characters, in `parent` (default: the system's). */
  static async create(prefix = "swarmshare-test-", parent?: string): Promise<TempDir> {
    return new TempDir(await Deno.makeTempDir({ prefix, dir: parent }));
  }

  /** A path inside the directory. */
  join(name: string): string {
    return `${this.path}/${name}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    live.delete(this);
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}

/** Resolves with `promise`, or rejects naming `what` if it takes longer than the wait limit. */
export function within<T>(promise: Promise<T>, what: string, limitMs = WAIT_LIMIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), limitMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Splits a byte stream into lines and hands them out in order, as they arrive. */
export class LineQueue {
  readonly #lines: string[] = [];
  readonly #all: string[] = [];
  #waiter?: () => void;
  #ended = false;
  readonly done: Promise<void>;
  readonly #limitMs: number;

  constructor(stream: ReadableStream<Uint8Array>, limitMs = WAIT_LIMIT_MS) {
    this.#limitMs = limitMs;
    this.done = this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    try {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        const pieces = (partial + text).split("\n");
        partial = pieces.pop()!;
        for (const line of pieces) this.#push(line);
      }
      if (partial) this.#push(partial);
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #push(line: string): void {
    this.#lines.push(line);
    this.#all.push(line);
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** Every line seen so far, taken or not. */
  get all(): readonly string[] {
    return this.#all;
  }

  /** The next line, or undefined when the stream ended. */
  async next(what = "a line of output"): Promise<string | undefined> {
    while (this.#lines.length === 0) {
      if (this.#ended) return undefined;
      await within(new Promise<void>((resolve) => this.#waiter = resolve), what, this.#limitMs);
    }
    return this.#lines.shift();
  }

  /** Takes lines until one satisfies `match`, returning it; lines before it are dropped. */
  async until(match: (line: string) => boolean, what: string): Promise<string> {
    while (true) {
      const line = await this.next(what);
      if (line === undefined) throw new Error(`output ended before ${what}`);
      if (match(line)) return line;
    }
  }
}

/** How a program is started. */
export interface ProgramOptions {
  cwd?: string;
  stdin?: boolean;
  waitLimitMs?: number;
  /** Run this executable with `args` as given, instead of `deno run main.ts <args>`. */
  executable?: string;
  /** `deno run`'s flags before main.ts, instead of `RUNTIME_FLAGS` (measurements). */
  runtimeFlags?: string[];
  /**
   * `XDG_STATE_HOME` of the program (a client keeps its identity and pinned trackers there).
   * Default: a fresh temporary directory, removed when the program has exited.
   */
  stateHome?: string;
  /** More environment variables for the program. */
  env?: Record<string, string>;
  /**
   * Its descriptor limit (`ulimit -n`, set through bash before the program starts): at most
   * the hard limit. Default: inherited.
   */
  descriptorLimit?: number;
}

/** A spawned process (by default `main.ts`) with its output captured line by line. */
export class Program implements AsyncDisposable {
  readonly stdout: LineQueue;
  readonly stderr: LineQueue;
  readonly #child: Deno.ChildProcess;
  readonly #stdin?: WritableStreamDefaultWriter<Uint8Array>;
  #status?: Promise<Deno.CommandStatus>;
  /** The temporary state home made for this program, removed once it exited. */
  readonly #ownStateHome?: string;

  constructor(args: string[], options: ProgramOptions = {}) {
    const stateHome = options.stateHome ??
      (this.#ownStateHome = Deno.makeTempDirSync({ prefix: "swarmshare-state-" }));
    const executable = options.executable ?? Deno.execPath();
    const argv = options.executable
      ? args
      : ["run", "-A", ...options.runtimeFlags ?? RUNTIME_FLAGS, MAIN, ...args];
    const limit = options.descriptorLimit;
    this.#child = new Deno.Command(limit === undefined ? executable : "bash", {
      args: limit === undefined
        ? argv
        : ["-c", `ulimit -n ${Math.floor(limit)} && exec "$@"`, "bash", executable, ...argv],
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: {
        NO_COLOR: "1",
        XDG_STATE_HOME: stateHome,
        // where `deno task test` was typed says nothing about this program: paths it is given
        // resolve against its own directory (lib/paths.ts)
        INIT_CWD: options.cwd ?? Deno.cwd(),
        ...options.env,
      },
    }).spawn();
    this.#stdin = options.stdin ? this.#child.stdin.getWriter() : undefined;
    this.stdout = new LineQueue(this.#child.stdout, options.waitLimitMs);
    this.stderr = new LineQueue(this.#child.stderr, options.waitLimitMs);
    live.add(this);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Settles when the process has exited, however long that takes (no wait limit). */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Writes text to standard input. */
  async write(text: string): Promise<void> {
    if (!this.#stdin) throw new Error("this program has no piped standard input");
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Closes standard input (end of input for a shell). */
  async endInput(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
  }

  /** Sends a signal (if still running). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Waits for exit and for all output; resolves with the exit status. */
  exited(): Promise<Deno.CommandStatus> {
    this.#status ??= (async () => {
      const status = await within(this.#child.status, `process ${this.pid} to exit`);
      await Promise.all([this.stdout.done, this.stderr.done]);
      if (this.#ownStateHome) {
        await Deno.remove(this.#ownStateHome, { recursive: true }).catch(() => {});
      }
      live.delete(this);
      return status;
    })();
    return this.#status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.endInput();
    this.kill("SIGKILL");
    await this.exited().catch(() => {});
  }
}

/** A tracker process. */
export class TrackerProcess extends Program {
  private constructor(
    args: string[],
    readonly dbPath: string,
    descriptorLimit?: number,
    runtimeFlags?: string[],
  ) {
    super(args, { descriptorLimit, runtimeFlags: runtimeFlags ?? TRACKER_RUNTIME_FLAGS });
  }

  port = 0;
  /** `SHA256:<hex>` as the tracker printed it; undefined in plaintext. */
  fingerprint?: string;

  /** Starts a tracker on 127.0.0.1 (port 0: any free one) and waits until it listens. */
  static async start(
    dbPath: string,
    options: {
      port?: number;
      extraArgs?: string[];
      descriptorLimit?: number;
      /** `deno run`'s flags instead of `TRACKER_RUNTIME_FLAGS`. */
      runtimeFlags?: string[];
    } = {},
  ): Promise<TrackerProcess> {
    const tracker = new TrackerProcess(
      [
        "server",
        "127.0.0.1",
        String(options.port ?? 0),
        "--db",
        dbPath,
        ...options.extraArgs ?? [],
      ],
      dbPath,
      options.descriptorLimit,
      options.runtimeFlags,
    );
    const line = await tracker.stdout.until(
      (text) => text.startsWith("tracker listening on "),
      "the tracker to listen",
    ).catch(async (error) => {
      await tracker[Symbol.asyncDispose]();
      throw new Error(`${error.message}; stderr: ${tracker.stderr.all.join("\n")}`);
    });
    tracker.port = Number(line.split(":").at(-1));
    // the next line is the certificate's fingerprint (or says the links are in clear)
    const second = await tracker.stdout.next("the tracker's fingerprint line");
    tracker.fingerprint = second?.startsWith("tracker fingerprint ")
      ? second.slice("tracker fingerprint ".length)
      : undefined;
    return tracker;
  }

  /** Stops it with SIGTERM and waits for a clean exit. */
  async stop(): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    return await this.exited();
  }
}

/** One line of a `--json` shell. */
export interface JsonReply {
  command?: string;
  event?: string;
  ok?: boolean;
  data?: unknown;
  error?: string;
  [key: string]: unknown;
}

/** A client shell in `--json` mode, driven one command at a time. */
export class JsonShell extends Program {
  /** Event lines met while waiting for something else, oldest first. */
  readonly events: JsonReply[] = [];

  private constructor(args: string[], options: ProgramOptions) {
    super(args, { ...options, stdin: true });
  }

  /**
   * Starts a client shell talking to the tracker on `trackerPort`. Its identity lives in
   * `stateHome` (default: a temporary one of its own, a new device each time).
   */
  static start(
    trackerPort: number,
    options: {
      cwd?: string;
      peerPort?: number;
      extraArgs?: string[];
      waitLimitMs?: number;
      stateHome?: string;
      /** The tracker's host as the client dials it. Default 127.0.0.1. */
      trackerHost?: string;
      /** Where the client serves peers (`client_ip`). Default 127.0.0.1. */
      clientHost?: string;
      env?: Record<string, string>;
      /** Its `ulimit -n`; default inherited. */
      descriptorLimit?: number;
    } = {},
  ): JsonShell {
    const shell = new JsonShell(
      [
        "client",
        options.clientHost ?? "127.0.0.1",
        String(options.peerPort ?? 0),
        options.trackerHost ?? "127.0.0.1",
        String(trackerPort),
        "--json",
        ...options.extraArgs ?? [],
      ],
      {
        cwd: options.cwd,
        waitLimitMs: options.waitLimitMs,
        stateHome: options.stateHome,
        env: options.env,
        descriptorLimit: options.descriptorLimit,
      },
    );
    shell.peerPort = options.peerPort ?? 0;
    return shell;
  }

  /** The peer port it was started with (0: unknown). */
  peerPort = 0;

  /** Polls `show_downloads` until `done` holds for the download of `name`; returns its line. */
  async downloadState(
    name: string,
    done: (download: DownloadLine) => boolean,
  ): Promise<DownloadLine> {
    return await within(
      (async () => {
        while (true) {
          const downloads = await this.ok("show_downloads") as DownloadLine[];
          const download = downloads.find((line) => line.name === name);
          if (download && done(download)) return download;
          // pace the polling so it does not starve the client it watches; this paces a
          // wait for a state, it never stands in for one
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })(),
      `download of ${name} to reach the expected state`,
    );
  }

  /**
   * Runs one command and returns its reply line (event lines met on the way are kept); a
   * listing shown page by page (lines with `more`) comes back as one reply with every page.
   */
  async run(command: string): Promise<JsonReply> {
    await this.write(`${command}\n`);
    const pages: unknown[] = [];
    while (true) {
      const line = await this.stdout.next(`the reply to "${command}"`);
      if (line === undefined) {
        throw new Error(
          `the shell ended before answering "${command}": ${this.stderr.all.join("\n")}`,
        );
      }
      const reply = JSON.parse(line) as JsonReply;
      if (reply.event !== undefined) {
        this.events.push(reply);
        continue;
      }
      if (reply.more === true) {
        pages.push(...reply.data as unknown[]);
        continue;
      }
      if (pages.length > 0 && reply.ok) {
        return { ...reply, data: [...pages, ...reply.data as unknown[]] };
      }
      return reply;
    }
  }

  /** Runs a command that must succeed and returns its data. */
  async ok(command: string): Promise<unknown> {
    const reply = await this.run(command);
    assert.equal(reply.ok, true, `"${command}" failed: ${reply.error}`);
    return reply.data;
  }

  /** Runs a command that must fail and returns its error message. */
  async fails(command: string): Promise<string> {
    const reply = await this.run(command);
    assert.equal(reply.ok, false, `"${command}" succeeded: ${JSON.stringify(reply.data)}`);
    assert.equal(typeof reply.error, "string");
    return reply.error!;
  }

  /**
   * Waits for an event line named `name`, or any of several names (also one already seen and
   * not yet taken).
   */
  async event(
    name: string | string[],
    match: (event: JsonReply) => boolean = () => true,
  ): Promise<JsonReply> {
    const names = typeof name === "string" ? [name] : name;
    const fits = (event: JsonReply) => names.includes(String(event.event)) && match(event);
    const seen = this.events.findIndex(fits);
    if (seen >= 0) return this.events.splice(seen, 1)[0];
    while (true) {
      const line = await this.stdout.next(`event ${name}`);
      if (line === undefined) throw new Error(`the shell ended before event ${name}`);
      const reply = JSON.parse(line) as JsonReply;
      if (reply.event === undefined) {
        throw new Error(`a reply came while waiting for ${name}: ${line}`);
      }
      if (fits(reply)) return reply;
      this.events.push(reply);
    }
  }

  /** Ends input and waits for a clean exit. */
  async quit(): Promise<Deno.CommandStatus> {
    await this.endInput();
    return await this.exited();
  }
}

/** One entry of `show_downloads --json`: the peer code's own row, as the shell prints it. */
export type DownloadLine = DownloadStatus;

/** The soft and hard descriptor limits of a process (this one by default). */
export function descriptorLimits(limitsText?: string): { soft: number; hard: number } {
  const text = limitsText ?? Deno.readTextFileSync("/proc/self/limits");
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  const value = (field: string | undefined) =>
    field === undefined ? 1024 : field === "unlimited" ? 1_048_576 : Number(field);
  return { soft: value(match?.[1]), hard: value(match?.[2]) };
}

/** Where `freePort` looks: above the well-known and registered ports most services take. */
const FREE_PORTS_FROM = 10_000;
/** Ports `freePort` handed out in this process, never handed out twice. */
const handedOut = new Set<number>();

/** The lowest port of the kernel's ephemeral range (source ports of outgoing connections). */
function ephemeralLow(): number {
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const low = Number(text.trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A port that was free a moment ago, for a client whose peer address a test must know, and
 * not one handed out before by this process. It comes from below the kernel's ephemeral range:
 * a port the kernel chose (port 0) is one it may give next as the source port of an outgoing
 * connection, and the program meant to listen there then finds it in use (seen in the bench,
 * whose C16 swarm starts its clients over a minute of logins).
 */
export function freePort(): number {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 200 && low - FREE_PORTS_FROM > 1_000; attempt++) {
    const port = FREE_PORTS_FROM + Math.floor(Math.random() * (low - FREE_PORTS_FROM));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue; // in use
    }
    handedOut.add(port);
    return port;
  }
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  handedOut.add(listener.addr.port);
  return listener.addr.port;
}

/** Writes `size` random bytes to `path` in 64 KiB chunks; returns the SHA-1 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const hash = createHash("sha1");
  const chunk = new Uint8Array(65536);
  for (let written = 0; written < size;) {
    const part = chunk.subarray(0, Math.min(chunk.length, size - written));
    crypto.getRandomValues(part);
    hash.update(part);
    for (let at = 0; at < part.length;) at += await file.write(part.subarray(at));
    written += part.length;
  }
  return hash.digest("hex");
}

/** The SHA-1 (hex) of a file, read as a stream. */
export async function sha1OfFile(path: string): Promise<string> {
  return (await hashFile(path)).sha1;
}

/** A seeded generator in [0, 1) (mulberry32), for runs that want repeatable randomness. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
