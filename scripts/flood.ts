/**
 * `deno task flood`: floods a real tracker and a real seeding client on 127.0.0.1 with the
 * connection shapes of issue 13 and checks that memory stays under the ceilings the code
 * states, and that an honest user is still served. Each shape gets fresh programs (peak
 * memory is a process's whole-life high-water mark, VmHWM):
 *
 *   idle      TLS connections to the tracker that send nothing (no account)
 *   prelogin  tracker connections not logged in, each holding a partial frame of the most a
 *             stranger may send (16 KiB); a few announce 1 MiB and must be closed at once
 *   partial   logged-in tracker connections each holding a partial 1 MiB frame
 *   maximal   logged-in tracker connections that each sent one maximal (1 MiB) frame and
 *             stay open (its buffer must shrink back)
 *   seeder    connections to a seeding client presenting members' tickets (many users),
 *             each with pieces of requests it never reads
 *
 * Beside every flood an honest user works through its own address: it logs in to the
 * tracker (within `HONEST_LOGIN_LIMIT_MS`) and downloads a file with a real client (for the
 * tracker shapes while the flood holds; for the seeder shape, started while the flood holds
 * the seeder's every place and done once it lets go). The flood comes from many loopback
 * addresses (127.x.y.z), at most 100 connections each, under the listeners' per-address cap.
 *
 *   deno task flood [--shapes idle,prelogin,partial,maximal,seeder] [--idle N]
 *                   [--prelogin N] [--partial N] [--maximal N] [--seeder N] [--users N]
 *                   [--pieces N] [--json]
 *
 * Each row's ceiling is the target's own memory and each connection it held at its worst
 * (`ceilingMib`); the caps bound the connections: 1,024 not logged in on a tracker, 256 on a
 * serving peer. The tracker and the seeder run at the hard descriptor limit (`ulimit -Hn`),
 * so that only those caps hold the floods back; so does this tool (it starts itself again
 * under `ulimit -n` when its soft limit is lower). The tracker runs with 10-minute idle and
 * login-grace timeouts, so nothing of a flood is closed for time while it is measured.
 * Exit 0 when every shape passed, 1 when a ceiling was exceeded or the honest user was not
 * served, 2 for wrong arguments.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { type BDict, encode } from "../lib/bencode.ts";
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from "../lib/frame.ts";
import { generateIdentity, type Identity } from "../lib/identity.ts";
import { BLOCK_LENGTH, PIECE_LENGTH } from "../lib/pieces.ts";
import { PROTOCOL_VERSION } from "../lib/protocol.ts";
import { connectionCap, MAX_CONNECTIONS_PER_ADDRESS, stopReading } from "../lib/transport.ts";
import {
  encodeExtended,
  encodeHandshake,
  encodeRequest,
  encodeSimple,
  HANDSHAKE_LENGTH,
} from "../lib/wire.ts";
import {
  MAX_PEER_CONNECTIONS,
  MAX_SERVED_PER_USER_FILE,
  WORST_BYTES_PER_CONNECTION as SERVED_CONNECTION_BYTES,
} from "../peer/serving_caps.ts";
import {
  MAX_STRANGERS,
  MAX_UNAUTHENTICATED_FRAME_BYTES,
  WORST_BYTES_PER_CONNECTION as TRACKER_CONNECTION_BYTES,
} from "../tracker/server.ts";
import {
  descriptorLimits,
  freePort,
  type JsonReply,
  JsonShell,
  TempDir,
  TrackerProcess,
  within,
  writeRandomFile,
} from "./processes.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

export const SHAPES = ["idle", "prelogin", "partial", "maximal", "seeder"] as const;
export type Shape = typeof SHAPES[number];

/**
 * What each program may hold beside its connections, MiB: the tracker about 60 MiB of its
 * own, two password hashes at once (64 MiB) and decoded large frames (a few times their
 * 16 MiB budget); a client 75-90 MiB with its hash thread (measured idle: 60 and 76).
 */
const OWN_MIB = { tracker: 192, seeder: 128 } as const;

/**
 * The most one connection holds, stated where it is bounded: tracker/server.ts (384 KiB),
 * peer/serving_caps.ts (1.75 MiB, served).
 */
const CONNECTION_BYTES = {
  tracker: TRACKER_CONNECTION_BYTES,
  seeder: SERVED_CONNECTION_BYTES,
} as const;

/**
 * The ceiling of peak resident memory, MiB, for a target holding `held` connections: its own
 * and each connection's worst. The caps bound `held`: 1,024 connections not logged in on a
 * tracker (`MAX_STRANGERS`), 256 on a serving peer (`MAX_PEER_CONNECTIONS`: 576 MiB in
 * all); logged-in tracker connections only by the descriptor limit, so those floods are
 * held to a size and the ceiling grows with it.
 */
export function ceilingMib(target: "tracker" | "seeder", held: number): number {
  return Math.ceil(OWN_MIB[target] + (held * CONNECTION_BYTES[target]) / MiB);
}

/** The honest user's login must be answered within this while a flood holds. */
const HONEST_LOGIN_LIMIT_MS = 5_000;
/** The honest user's download must complete within this. */
const HONEST_DOWNLOAD_LIMIT_MS = 60_000;
/** Connections from one flood address: under the listeners' cap per address. */
const PER_SOURCE = Math.min(100, MAX_CONNECTIONS_PER_ADDRESS);
/** Connections being opened at once. */
const OPENING_AT_ONCE = 64;
/** Any one connection must be opened (TLS and all) within this, or it counts as refused. */
const OPEN_LIMIT_MS = 20_000;
/** A shape must be built, measured and released within this. */
const SHAPE_LIMIT_MS = 10 * 60_000;
/** Files the seeder shares for the seeder flood, and the honest user's file: 1 MiB each. */
const SEEDER_FILES = 8;
const FILE_BYTES = 1 * MiB;
const PIECES_PER_FILE = FILE_BYTES / PIECE_LENGTH;
/** Frames announced past the stranger's limit in the prelogin shape: each must be closed. */
const OVERSIZED_PRELOGIN = 16;
const HONEST_FILE = "honest.bin";
const GROUP = "flood";
const HONEST_SOURCE = "127.0.0.2";

/** What to flood, how hard. */
export interface FloodOptions {
  shapes: Shape[];
  /** Connections asked for, per shape. */
  connections: Record<Shape, number>;
  /** Members whose tickets the seeder flood presents. */
  users: number;
  /** Pieces each seeder-flood connection asks for and never reads. */
  pieces: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
  /** Stops the run between steps (Ctrl-C). */
  signal?: AbortSignal;
}

/** One measured shape. */
export interface FloodRow {
  shape: Shape;
  /** The process flooded: "tracker" or "seeder". */
  target: "tracker" | "seeder";
  /** Connections asked for. */
  asked: number;
  /** Connections tried (asked, within the limits of this machine and the target's cap). */
  tried: number;
  /**
   * Connections the target held open at the measurement, counted at its port (the honest
   * clients' links to a tracker included).
   */
  held: number;
  /** Connections of the flood the target refused or closed. */
  refused: number;
  /** The target's resident memory before the flood, MiB. */
  base_rss_mib: number;
  /** Its resident memory with the flood held, before the honest user's work, MiB. */
  flood_rss_mib: number;
  /** The target's peak resident memory (VmHWM) over its life, flood included, MiB. */
  peak_rss_mib: number;
  /** Its resident memory at the end, after the flood let go, MiB. */
  end_rss_mib: number;
  ceiling_mib: number;
  /** The honest login's time while the flood held, ms (null: it failed). */
  honest_login_ms: number | null;
  /** The honest download's time, s (null: it failed). */
  honest_download_s: number | null;
  pass: boolean;
  /** What limited the flood, what was expected, what failed. */
  note: string;
}

// Processes and addresses

/** Resident memory of a process, MiB: now and its peak. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

/** Waits until a process's resident memory stops growing (a flood's cost is all in). */
async function settled(pid: number): Promise<void> {
  let last = (await memoryOf(pid)).rss;
  let steady = 0;
  for (let i = 0; i < 40 && steady < 4; i++) {
    // samples a state the process moves towards; no event says when it has arrived
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = (await memoryOf(pid)).rss;
    steady = Math.abs(now - last) < 1 ? steady + 1 : 0;
    last = now;
  }
}

/** Established TCP connections whose local end is `port`: those a listener holds. */
async function heldAt(port: number): Promise<number> {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let count = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await Deno.readTextFile(file).catch(() => "");
    for (const line of text.split("\n")) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(local) && fields[3] === "01") count++;
    }
  }
  return count;
}

/** Loopback source addresses, `perSource` connections each: 127.<block>.x.y. */
class Sources {
  #used = 0;
  constructor(readonly block: number, readonly perSource = PER_SOURCE) {}

  next(): string {
    const index = Math.floor(this.#used++ / this.perSource);
    return `127.${this.block}.${Math.floor(index / 250)}.${(index % 250) + 1}`;
  }
}

/** A TLS connection from `localAddress` presenting `identity`, nothing sent. */
function dial(
  port: number,
  localAddress: string,
  identity: Identity,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      socket: net.connect({ host: "127.0.0.1", port, localAddress }),
      cert: identity.certPem,
      key: identity.keyPem,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => fail(new Error("no TLS handshake in time")), OPEN_LIMIT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on("error", () => {});
    socket.once("error", fail);
    socket.once("close", () => fail(new Error("closed during the handshake")));
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.removeListener("error", fail);
      socket.removeAllListeners("close");
      resolve(socket);
    });
  });
}

/** Runs `task` for each of `count` indices, `OPENING_AT_ONCE` at a time. */
async function inTurn(
  count: number,
  task: (index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count && !signal?.aborted) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, count) }, worker));
}

/** A flood's sockets, all destroyed on dispose. */
class Flood implements Disposable {
  /** The sockets open (a socket that stopped reading does not see its close). */
  readonly sockets = new Set<tls.TLSSocket>();

  /** Keeps `socket` until it closes; what comes on it is read and dropped, unless stopped. */
  hold(socket: tls.TLSSocket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    // a socket nobody reads never sees its far end close, and keeps its descriptor
    if (socket.listenerCount("data") === 0) socket.resume();
  }

  [Symbol.dispose](): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

/** A tracker link spoken by hand on a flood socket: replies by id, pushes ignored. */
class Link {
  readonly #decoder = new FrameDecoder();
  readonly #waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  #nextId = 1;

  constructor(readonly socket: tls.TLSSocket) {
    socket.on("data", (chunk: Uint8Array) => {
      this.#decoder.push(chunk);
      for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next()) {
        const resolve = this.#waiting.get(frame.id as number);
        this.#waiting.delete(frame.id as number);
        resolve?.(frame);
      }
    });
    socket.once("close", () => {
      for (const resolve of this.#waiting.values()) resolve({ ok: false, error: "closed" });
      this.#waiting.clear();
    });
  }

  /** Sends a request; resolves with its reply (`ok: false` when the link closed first). */
  request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.socket.destroyed) return Promise.resolve({ ok: false, error: "closed" });
    const id = this.#nextId++;
    const reply = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(id, resolve));
    this.socket.write(encodeFrame({ ...message, id }));
    return reply;
  }

  async expect(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const reply = await this.request(message);
    if (reply.ok !== true) {
      throw new Error(`${message.type} refused: ${JSON.stringify(reply.error)}`);
    }
    return reply.data as Record<string, unknown>;
  }

  static async open(port: number, source: string, identity: Identity): Promise<Link> {
    const link = new Link(await dial(port, source, identity));
    await link.expect({ type: "hello", version: PROTOCOL_VERSION });
    return link;
  }
}

/**
 * Writes `bytes` to `socket` while the far end takes them: resolves once all are taken, or
 * once a write has waited `stallMs` for room (the far end stopped reading: what is left
 * stays with us). Never buffers more than one chunk of ours.
 */
async function writeWhileRead(
  socket: tls.TLSSocket,
  bytes: Uint8Array,
  stallMs = 1_000,
): Promise<void> {
  for (let at = 0; at < bytes.length && !socket.destroyed;) {
    const chunk = bytes.subarray(at, at + 64 * KiB);
    at += chunk.length;
    if (socket.write(chunk)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), stallMs);
      const done = (value: boolean) => {
        clearTimeout(timer);
        socket.off("drain", onDrain);
        socket.off("close", onClose);
        resolve(value);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      socket.once("drain", onDrain);
      socket.once("close", onClose);
    });
    if (!drained) return;
  }
}

/** A frame header announcing `length` bytes, and `body` bytes of it (spaces). */
function partialFrame(length: number, body: number): Uint8Array {
  const bytes = new Uint8Array(4 + body).fill(0x20, 4);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/** A ping frame of exactly the largest body a tracker takes. */
function maximalPing(id: number): Uint8Array {
  const bare = JSON.stringify({ type: "ping", id, pad: "" });
  const frame = encodeFrame({ type: "ping", id, pad: "x".repeat(MAX_FRAME_BYTES - bare.length) });
  if (frame.length !== 4 + MAX_FRAME_BYTES) throw new Error("the maximal ping is not maximal");
  return frame;
}

// The honest side

/** A tracker, a seeding client and an honest downloader, members of one group. */
class Setting implements AsyncDisposable {
  readonly #closing: AsyncDisposable[] = [];
  tracker!: TrackerProcess;
  seed!: JsonShell;
  fetcher!: JsonShell;
  seedPort = 0;
  #downloads = 0;

  private constructor(readonly dir: TempDir, readonly descriptorLimit: number) {}

  static async start(descriptorLimit: number, seedFiles: string[]): Promise<Setting> {
    const setting = new Setting(await TempDir.create("swarmshare-flood-"), descriptorLimit);
    try {
      await setting.#start(seedFiles);
      return setting;
    } catch (error) {
      await setting[Symbol.asyncDispose]();
      throw error;
    }
  }

  async #start(seedFiles: string[]): Promise<void> {
    const { dir, descriptorLimit } = this;
    this.tracker = await TrackerProcess.start(dir.join("tracker.db"), {
      descriptorLimit,
      extraArgs: ["--idle-timeout-ms", "600000", "--login-grace-ms", "600000"],
    });
    this.#closing.push(this.tracker);
    for (const name of ["seed", "fetcher"]) await Deno.mkdir(dir.join(name));
    this.seedPort = freePort();
    this.seed = JsonShell.start(this.tracker.port, {
      cwd: dir.join("seed"),
      peerPort: this.seedPort,
      descriptorLimit,
      waitLimitMs: SHAPE_LIMIT_MS,
    });
    this.#closing.push(this.seed);
    this.fetcher = JsonShell.start(this.tracker.port, {
      cwd: dir.join("fetcher"),
      waitLimitMs: SHAPE_LIMIT_MS,
    });
    this.#closing.push(this.fetcher);
    for (const [name, shell] of [["seed", this.seed], ["fetcher", this.fetcher]] as const) {
      await shell.ok(`create_user ${name} pw-${name}`);
      await shell.ok(`login ${name} pw-${name}`);
    }
    await this.seed.ok(`create_group ${GROUP}`);
    await this.fetcher.ok(`join_group ${GROUP}`);
    await this.seed.ok(`accept_request ${GROUP} fetcher`);
    for (const name of [HONEST_FILE, ...seedFiles]) {
      await writeRandomFile(dir.join(`seed/${name}`), FILE_BYTES);
      await this.seed.ok(`upload_file ${name} ${GROUP}`);
    }
  }

  /** The honest user logs in on a fresh link from its own address: ms, or null. */
  async honestLogin(): Promise<number | null> {
    const started = performance.now();
    try {
      const link = await within(
        Link.open(this.tracker.port, HONEST_SOURCE, await generateIdentity("honest")),
        "the honest link",
        HONEST_LOGIN_LIMIT_MS,
      );
      try {
        await within(
          link.expect({ type: "login", user: "fetcher", password: "pw-fetcher" }),
          "the honest login",
          HONEST_LOGIN_LIMIT_MS,
        );
      } finally {
        link.socket.destroy();
      }
      return Math.round(performance.now() - started);
    } catch {
      return null;
    }
  }

  /** Starts the honest download; resolves with its time in s, or null when it failed. */
  async honestDownload(): Promise<() => Promise<number | null>> {
    const destination = this.dir.join(`fetcher/d${++this.#downloads}`);
    await Deno.mkdir(destination);
    const started = performance.now();
    await this.fetcher.ok(`download_file ${GROUP} ${HONEST_FILE} ${destination}`);
    return async () => {
      try {
        const done = await within(
          this.fetcher.event(
            ["download_complete", "download_failed"],
            (event: JsonReply) => event.name === HONEST_FILE,
          ),
          "the honest download",
          HONEST_DOWNLOAD_LIMIT_MS,
        );
        if (done.event !== "download_complete") return null;
        return Math.round((performance.now() - started) / 100) / 10;
      } catch {
        return null;
      }
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const resource of this.#closing.reverse()) {
      await Promise.resolve(resource[Symbol.asyncDispose]()).catch(() => {});
    }
    await this.dir[Symbol.asyncDispose]();
  }
}

/** Members of the group on raw links, each from its own address (127.<block>.x.y), logged in. */
async function members(
  setting: Setting,
  count: number,
  block: number,
  options: { join: boolean },
): Promise<{ name: string; identity: Identity; link: Link; token: string }[]> {
  const made: { name: string; identity: Identity; link: Link; token: string }[] = [];
  // one address each: the login throttles count per address
  const sources = new Sources(block, 1);
  let next = 0;
  // scrypt runs two at a time on the tracker: more in flight would only queue there
  const worker = async () => {
    while (next < count) {
      const name = `member${next++}`;
      const identity = await generateIdentity(name);
      const link = await Link.open(setting.tracker.port, sources.next(), identity);
      await link.expect({ type: "create_user", user: name, password: `pw-${name}` });
      const login = await link.expect({ type: "login", user: name, password: `pw-${name}` });
      if (options.join) await link.expect({ type: "join_group", group: GROUP });
      made.push({ name, identity, link, token: String(login.token) });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  if (options.join) {
    for (const member of made) await setting.seed.ok(`accept_request ${GROUP} ${member.name}`);
  }
  return made;
}

// The shapes

/** What a shape's flood did. */
interface Built {
  /** Connections tried. */
  tried: number;
  /** Said beside the row. */
  note: string[];
  /** What the target did that it must not. */
  failures: string[];
  /**
   * The honest download starts while the flood holds and is done once it lets go (a seeder
   * whose every place the flood holds); otherwise it is done while the flood holds.
   */
  downloadAfter?: boolean;
}

/** What one shape does to its target; the flood's sockets go into `flood`. */
type Builder = (
  setting: Setting,
  flood: Flood,
  asked: number,
  options: FloodOptions,
) => Promise<Built>;

const builders: Record<Shape, Builder> = {
  async idle(setting, flood, asked, options) {
    // not logged in: the tracker closes the oldest beyond its strangers, so this holds few
    const tried = asked;
    const limits = await trackerLimits(setting.tracker.pid);
    const strangers = Math.min(MAX_STRANGERS, Math.floor(limits.cap / 2));
    const note = [
      `the tracker keeps ${strangers} not logged in, closing the oldest; its cap ` +
      `${limits.cap} at ulimit -n ${limits.soft}`,
    ];
    const identity = await generateIdentity("idle flood");
    const sources = new Sources(40);
    await inTurn(tried, async () => {
      try {
        flood.hold(await dial(setting.tracker.port, sources.next(), identity));
      } catch {
        // refused: counted from what is left open
      }
    }, options.signal);
    return { tried, note, failures: [] };
  },

  async prelogin(setting, flood, asked, options) {
    const tried = asked;
    const identity = await generateIdentity("prelogin flood");
    const sources = new Sources(41);
    // the most a stranger may send in a frame, less one byte: held, never complete
    const partial = partialFrame(
      MAX_UNAUTHENTICATED_FRAME_BYTES,
      MAX_UNAUTHENTICATED_FRAME_BYTES - 1,
    );
    await inTurn(tried, async () => {
      try {
        const socket = await dial(setting.tracker.port, sources.next(), identity);
        flood.hold(socket);
        await writeWhileRead(socket, partial);
      } catch {
        // refused: counted from what is left open
      }
    }, options.signal);
    // a header past that limit: the tracker must close the connection at once
    let closed = 0;
    await Promise.all(Array.from({ length: OVERSIZED_PRELOGIN }, async () => {
      const socket = await dial(setting.tracker.port, sources.next(), identity).catch(() => {});
      if (!socket) return; // not even let in: said below
      try {
        const gone = new Promise<void>((resolve) => socket.once("close", resolve));
        socket.resume();
        socket.write(partialFrame(MAX_FRAME_BYTES, 1024));
        await within(gone, "the tracker to close an oversized frame", 10_000);
        closed++;
      } catch {
        // still open: said below
      } finally {
        socket.destroy();
      }
    }));
    const note = [`${closed} of ${OVERSIZED_PRELOGIN} announcing 1 MiB closed at once`];
    const kept = OVERSIZED_PRELOGIN - closed;
    return { tried, note, failures: kept > 0 ? [`${kept} oversized frames not closed`] : [] };
  },

  async partial(setting, flood, asked, options) {
    return await loggedInFlood(setting, flood, asked, options, async (link) => {
      await writeWhileRead(link.socket, partialFrame(MAX_FRAME_BYTES, MAX_FRAME_BYTES - 1));
    });
  },

  async maximal(setting, flood, asked, options) {
    let unanswered = 0;
    const built = await loggedInFlood(setting, flood, asked, options, async (link) => {
      // the reply to one maximal frame: then the connection stays, idle
      const answered = new Promise<void>((resolve) => link.socket.once("data", () => resolve()));
      await writeWhileRead(link.socket, maximalPing(1_000_000), 30_000);
      await within(answered, "the reply to a maximal frame", 30_000).catch(() => unanswered++);
    });
    if (unanswered > 0) built.failures.push(`${unanswered} maximal frames not answered`);
    return built;
  },

  async seeder(setting, flood, asked, options) {
    const tried = Math.min(asked, ownRoom());
    const users = Math.max(1, options.users);
    const made = await members(setting, users, 50, { join: true });
    // every member's ticket for every file, bound to the member's certificate
    const files: { infoHash: Uint8Array; tickets: string[] }[] = [];
    for (let f = 0; f < SEEDER_FILES; f++) {
      const tickets: string[] = [];
      let infoHash = new Uint8Array();
      for (const member of made) {
        const located = await member.link.expect({
          type: "locate_file",
          group: GROUP,
          name: `flood${f}.bin`,
        });
        infoHash = Uint8Array.fromHex(String(located.info_hash));
        tickets.push(String(located.ticket));
      }
      files.push({ infoHash, tickets });
    }
    for (const member of made) member.link.socket.destroy();
    const sources = new Sources(51);
    let served = 0;
    await inTurn(tried, async (i) => {
      // member i % users, on files in turn so that no (member, file) passes its cap first
      const user = i % users;
      const file = Math.floor(i / users) % SEEDER_FILES;
      try {
        const socket = await dial(setting.seedPort, sources.next(), made[user].identity);
        if (await presentTicket(socket, files[file].infoHash, files[file].tickets[user])) {
          flood.hold(socket);
          served++;
          // ask for whole pieces and never read them
          stopReading(socket);
          const requests: Uint8Array[] = [];
          for (let p = 0; p < options.pieces; p++) {
            for (let begin = 0; begin < PIECE_LENGTH; begin += BLOCK_LENGTH) {
              requests.push(encodeRequest(p % PIECES_PER_FILE, begin, BLOCK_LENGTH));
            }
          }
          socket.write(concat(requests));
        }
      } catch {
        // refused: counted from what is left open
      }
    }, options.signal);
    const note = [`${users} members, ${served} served`];
    if (users * SEEDER_FILES * MAX_SERVED_PER_USER_FILE < tried) {
      note.push(
        `members' own caps allow at most ${users * SEEDER_FILES * MAX_SERVED_PER_USER_FILE}`,
      );
    }
    const failures = served > MAX_PEER_CONNECTIONS
      ? [`${served} served, more than the ${MAX_PEER_CONNECTIONS} a seeder holds`]
      : [];
    return { tried, note, failures, downloadAfter: true };
  },
};

/** Logged-in connections, `asked` of them over a few members, each then doing `act`. */
async function loggedInFlood(
  setting: Setting,
  flood: Flood,
  asked: number,
  options: FloodOptions,
  act: (link: Link) => Promise<void>,
): Promise<Built> {
  const tried = Math.min(asked, ownRoom());
  const made = await members(setting, Math.max(1, Math.ceil(tried / 500)), 42, { join: false });
  for (const member of made) member.link.socket.destroy();
  const sources = new Sources(43);
  await inTurn(tried, async (i) => {
    const member = made[i % made.length];
    try {
      const link = await Link.open(setting.tracker.port, sources.next(), member.identity);
      flood.hold(link.socket);
      await link.expect({ type: "resume", token: member.token });
      await act(link);
    } catch {
      // refused: counted from what is left open
    }
  }, options.signal);
  return { tried, note: [`${made.length} members`], failures: [] };
}

/**
 * The BitTorrent handshake, then the extension handshake with `ticket`: true once the
 * seeder unchokes us (served), false when it closes the connection (refused).
 */
function presentTicket(
  socket: tls.TLSSocket,
  infoHash: Uint8Array,
  ticket: string,
): Promise<boolean> {
  return new Promise((resolve) => {
    let buffered: Uint8Array = new Uint8Array(0);
    let handshook = false;
    const timer = setTimeout(() => finish(false), OPEN_LIMIT_MS);
    const finish = (served: boolean) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (!served) socket.destroy();
      resolve(served);
    };
    const onClose = () => finish(false);
    const onData = (chunk: Uint8Array) => {
      buffered = concat([buffered, chunk]);
      if (!handshook) {
        if (buffered.length < HANDSHAKE_LENGTH) return;
        buffered = buffered.subarray(HANDSHAKE_LENGTH);
        handshook = true;
      }
      // length-prefixed messages: an unchoke (id 1) says we are served
      while (buffered.length >= 4) {
        const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(0);
        if (buffered.length < 4 + length) return;
        if (length > 0 && buffered[4] === 1) return finish(true);
        buffered = buffered.subarray(4 + length);
      }
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    const handshake: BDict = new Map<string, unknown>([
      ["m", new Map()],
      ["ticket", new TextEncoder().encode(ticket)],
    ]) as BDict;
    socket.write(encodeHandshake(infoHash, crypto.getRandomValues(new Uint8Array(20))));
    socket.write(encodeExtended(0, encode(handshake)));
    socket.write(encodeSimple("interested"));
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.length;
  }
  return whole;
}

/** The tracker's descriptor limit and the connections it holds at that limit. */
async function trackerLimits(pid: number): Promise<{ soft: number; cap: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/limits`);
  return { soft: descriptorLimits(text).soft, cap: connectionCap(text) };
}

/** Connections this process may still open (its descriptor limit less a reserve). */
function ownRoom(): number {
  return Math.max(0, descriptorLimits().soft - 512);
}

/** Floods one shape on fresh programs and measures it. */
export async function runShape(shape: Shape, options: FloodOptions): Promise<FloodRow> {
  const log = options.log ?? (() => {});
  const asked = options.connections[shape];
  const target = shape === "seeder" ? "seeder" : "tracker";
  const seedFiles = shape === "seeder"
    ? Array.from({ length: SEEDER_FILES }, (_, f) => `flood${f}.bin`)
    : [];
  await using setting = await Setting.start(descriptorLimits().hard, seedFiles);
  const pid = target === "seeder" ? setting.seed.pid : setting.tracker.pid;
  const port = target === "seeder" ? setting.seedPort : setting.tracker.port;
  const base = await memoryOf(pid);
  log(`flood ${shape}: ${asked} connections to the ${target}`);
  let built: Built;
  let flooded: { rss: number; hwm: number };
  let held: number;
  let refused: number;
  let honestLogin: number | null;
  let downloaded: () => Promise<number | null>;
  {
    using flood = new Flood();
    built = await within(
      builders[shape](setting, flood, asked, options),
      `the ${shape} flood`,
      SHAPE_LIMIT_MS,
    );
    await settled(pid);
    flooded = await memoryOf(pid);
    held = await heldAt(port);
    refused = built.tried - flood.sockets.size;
    log(`flood ${shape}: ${held} held, ${refused} refused; the honest user works`);
    honestLogin = await setting.honestLogin();
    downloaded = await setting.honestDownload();
    if (!built.downloadAfter) {
      const seconds = await downloaded();
      downloaded = () => Promise.resolve(seconds);
    }
  }
  const downloadSeconds = await downloaded();
  const memory = await memoryOf(pid);
  const ceiling = ceilingMib(target, held);
  const failures = [...built.failures];
  if (memory.hwm > ceiling) failures.push(`peak over the ${ceiling} MiB ceiling`);
  if (honestLogin === null) failures.push("the honest login failed");
  if (downloadSeconds === null) failures.push("the honest download failed");
  if (shape === "seeder" && held > MAX_PEER_CONNECTIONS) {
    failures.push(`${held} connections held, more than ${MAX_PEER_CONNECTIONS}`);
  }
  return {
    shape,
    target,
    asked,
    tried: built.tried,
    held,
    refused,
    base_rss_mib: Math.round(base.rss),
    flood_rss_mib: Math.round(flooded.rss),
    peak_rss_mib: Math.round(memory.hwm),
    end_rss_mib: Math.round(memory.rss),
    ceiling_mib: ceiling,
    honest_login_ms: honestLogin,
    honest_download_s: downloadSeconds,
    pass: failures.length === 0,
    note: [...failures, ...built.note].join("; "),
  };
}

/** Runs every shape asked for, one after another; a shape that broke is a failed row. */
export async function runFlood(options: FloodOptions): Promise<FloodRow[]> {
  const rows: FloodRow[] = [];
  for (const shape of options.shapes) {
    if (options.signal?.aborted) break;
    try {
      rows.push(await runShape(shape, options));
    } catch (error) {
      rows.push(brokenRow(shape, options.connections[shape], error));
    }
  }
  return rows;
}

/** The row of a shape that could not be run to the end (its programs are gone). */
function brokenRow(shape: Shape, asked: number, error: unknown): FloodRow {
  const target = shape === "seeder" ? "seeder" : "tracker";
  return {
    shape,
    target,
    asked,
    tried: 0,
    held: 0,
    refused: 0,
    base_rss_mib: 0,
    flood_rss_mib: 0,
    peak_rss_mib: 0,
    end_rss_mib: 0,
    ceiling_mib: 0,
    honest_login_ms: null,
    honest_download_s: null,
    pass: false,
    note: `the run broke: ${error instanceof Error ? error.message : String(error)}`,
  };
}

// The command

const USAGE = `usage: deno task flood [--shapes ${SHAPES.join(",")}] [--idle N] [--prelogin N]
                       [--partial N] [--maximal N] [--seeder N] [--users N] [--pieces N]
                       [--json]
  --shapes    which floods to run (default all): idle TLS connections to the tracker;
              prelogin: partial 16 KiB frames not logged in; partial: logged-in partial
              1 MiB frames; maximal: one 1 MiB frame each, then idle; seeder: members'
              tickets on a seeding client, pieces asked for and never read
  --idle N --prelogin N --partial N --maximal N --seeder N
              connections per shape (defaults 20000, 5000, 1000, 1000, 1000)
  --users N   members presenting tickets in the seeder flood (default 50)
  --pieces N  pieces each seeder-flood connection asks for and never reads (default 2)
  --json      print one JSON array of rows instead of the table`;

const DEFAULTS: Record<Shape, number> = {
  idle: 20_000,
  prelogin: 5_000,
  partial: 1_000,
  maximal: 1_000,
  seeder: 1_000,
};

class UsageError extends Error {}

function parseOptions(args: string[]): FloodOptions & { json: boolean; help: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      shapes: { type: "string" },
      idle: { type: "string" },
      prelogin: { type: "string" },
      partial: { type: "string" },
      maximal: { type: "string" },
      seeder: { type: "string" },
      users: { type: "string" },
      pieces: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const count = (text: string | undefined, fallback: number, name: string) => {
    if (text === undefined) return fallback;
    if (!/^[1-9]\d{0,6}$/.test(text)) {
      throw new UsageError(`--${name} takes a positive whole number, not "${text}"`);
    }
    return Number(text);
  };
  const shapes = (values.shapes ?? SHAPES.join(",")).split(",");
  for (const shape of shapes) {
    if (!(SHAPES as readonly string[]).includes(shape)) {
      throw new UsageError(`unknown shape "${shape}" (${SHAPES.join(", ")})`);
    }
  }
  const connections = Object.fromEntries(
    SHAPES.map((shape) => [shape, count(values[shape], DEFAULTS[shape], shape)]),
  ) as Record<Shape, number>;
  return {
    shapes: shapes as Shape[],
    connections,
    users: count(values.users, 50, "users"),
    pieces: count(values.pieces, 2, "pieces"),
    json: values.json,
    help: values.help,
  };
}

function table(rows: FloodRow[]): string[] {
  const head = [
    "shape",
    "target",
    "asked",
    "held",
    "base MiB",
    "flood MiB",
    "peak MiB",
    "ceiling MiB",
    "login ms",
    "download s",
    "result",
  ];
  const body = rows.map((row) => [
    row.shape,
    row.target,
    String(row.asked),
    String(row.held),
    String(row.base_rss_mib),
    String(row.flood_rss_mib),
    String(row.peak_rss_mib),
    String(row.ceiling_mib),
    row.honest_login_ms === null ? "failed" : String(row.honest_login_ms),
    row.honest_download_s === null ? "failed" : String(row.honest_download_s),
    row.pass ? "pass" : "FAIL",
  ]);
  const widths = head.map((cell, i) =>
    Math.max(cell.length, ...body.map((line) => line[i].length))
  );
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join("  ");
  return [
    line(head),
    ...body.map(line),
    ...rows.map((row) => `${row.shape}: ${row.note}`),
  ];
}

/** Starts this tool again under its hard descriptor limit; the child's exit code. */
async function againWithRaisedLimit(hard: number): Promise<number> {
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${hard} && exec "$@"`,
      "bash",
      Deno.execPath(),
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      ...Deno.args,
    ],
    env: { SWARMSHARE_FLOOD_RAISED: "1" },
    stdin: "null",
  }).spawn();
  const forward = () => child.kill("SIGTERM");
  Deno.addSignalListener("SIGTERM", forward);
  try {
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGTERM", forward);
  }
}

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const limits = descriptorLimits();
  const most = Math.max(...options.shapes.map((shape) => options.connections[shape]));
  if (limits.soft < most + 512 && limits.soft < limits.hard) {
    if (!Deno.env.get("SWARMSHARE_FLOOD_RAISED")) return await againWithRaisedLimit(limits.hard);
  }
  if (limits.hard < most + 512) {
    console.error(
      `flood: this process may open ${limits.soft} descriptors (hard limit ${limits.hard}): ` +
        `floods that keep their connections are cut to fit; raise the hard limit (as root: ulimit -Hn ${
          most + 512
        }, or ` +
        `limits.conf) to try all ${most}`,
    );
  }
  const aborting = new AbortController();
  const stop = () => aborting.abort();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
  try {
    const rows = await runFlood({
      ...options,
      log: (line) => console.error(line),
      signal: aborting.signal,
    });
    if (options.json) console.log(JSON.stringify(rows));
    else for (const line of table(rows)) console.log(line);
    if (aborting.signal.aborted) return 130;
    return rows.every((row) => row.pass) ? 0 : 1;
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
