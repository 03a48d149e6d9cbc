/**
 * Swarmshare's one entry point: `server` runs the tracker, `client` runs a user's shell and
 * peer. Everything else lives in tracker/, peer/ and lib/.
 *
 * @module
 */

import { join } from "node:path";
import denoConfig from "./deno.json" with { type: "json" };
import { closestWord, type OptionSpecs, parseArguments } from "./lib/argv.ts";
import { errorMessage, UsageError } from "./lib/errors.ts";
import { formatFingerprint, parseFingerprint } from "./lib/identity.ts";
import { Logger, openLogFile, writeLineQuietly } from "./lib/log.ts";
import {
  defaultTrackerStateDir,
  makePrivateDir,
  type ResolveOptions,
  resolveUserPath,
  startDirectory,
  TRACKER_DB_FILE,
} from "./lib/paths.ts";
import { type PeerAddress, quoted } from "./lib/protocol.ts";
import { CLOCK_SKEW_MS, TICKET_LIFETIME_MS } from "./lib/ticket.ts";
import { PLAINTEXT_WARNING, runClient } from "./peer/client.ts";
import { MAX_EXTRA_TRACKERS, parseTrackerList } from "./peer/tracker_addresses.ts";
import { Tracker } from "./tracker/server.ts";
import { describeDb, isPostgresUrl } from "./tracker/store.ts";

const VERSION = `swarmshare ${denoConfig.version}`;

const SERVER_USAGE = `usage: server <ip> <port> [options]
  run the tracker on ip:port (port 0: any free port, printed)
  --db FILE|URL           its database: a SQLite file (default: tracker.db
                          in the state directory $XDG_STATE_HOME/swarmshare/
                          tracker, else ~/.local/state/swarmshare/tracker),
                          or postgres://user:password@host:port/database
  --tls-cert FILE --tls-key FILE
                          present this certificate chain and key (PEM)
                          instead of the tracker's own
  --idle-timeout-ms N     close a connection silent for N ms (45000)
  --login-grace-ms N      close a connection not logged in for N ms
                          (60000, at most 86400000)
  --session-idle-days N   refuse a login session unused for N days (14)
  --ticket-lifetime-ms N  download tickets last N ms (600000, the most)
  --busy-after-ms N       answer "the tracker is busy" to a request that
                          waited N ms for its turn (5000)`;

const CLIENT_USAGE = `usage: client <client_ip> <client_port> <server_ip> <server_port> [options]
  run a shell and peer: serve pieces on client_ip:client_port and use the
  tracker at server_ip:server_port
  --json                  one JSON line per command (and per event)
  --state-dir DIR         identity, pinned trackers, shares (default
                          $XDG_STATE_HOME/swarmshare, else
                          ~/.local/state/swarmshare)
  --tracker IP:PORT       another instance of the same tracker deployment
                          (several on one PostgreSQL), used when the one
                          in use is unreachable; repeatable, at most ${MAX_EXTRA_TRACKERS},
                          tried in the order given after server_ip:port
  --tracker-fingerprint SHA256
                          every tracker must present this fingerprint
                          (default: trusted on first use, then pinned;
                          a --tracker presenting the fingerprint pinned
                          for another of them is the same deployment)
  --public-addr HOST:PORT where peers reach this client
  --upload-limit-kib N    uploads at most N KiB/s in all (no limit)
  --download-limit-kib N  downloads at most N KiB/s in all (no limit)
  --stall-timeout-ms N    fail a download when a missing piece has had no
                          online holder for N ms (default: wait for one)
  --request-timeout-ms N  drop a peer that sends nothing for N ms while
                          asked (30000)
  --ticket-grace-ms N     honour a peer's ticket N ms past its expiry
                          (clock skew; 60000, the most)`;

const COMMON_USAGE = `both programs:
  --log FILE              append the log to FILE (the tracker's goes to
                          stdout otherwise, the client's nowhere)
  --quiet                 log only warnings and errors
  --verbose               log debug lines too (the client: on stderr)
  --insecure-plaintext    every link in clear, no identity checked; for
                          measurements only
  -h, --help              this help
  -V, --version           the version
paths are relative to the directory the program was started in; ~ is home`;

/** Everything, for `--help` without a program. */
const USAGE = `${SERVER_USAGE}\n\n${CLIENT_USAGE}\n\n${COMMON_USAGE}`;

/** The options of both programs. */
const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  log: { type: "string" },
  quiet: { type: "boolean" },
  verbose: { type: "boolean" },
  "insecure-plaintext": { type: "boolean" },
} as const satisfies OptionSpecs;

const SERVER_OPTIONS = {
  ...COMMON_OPTIONS,
  db: { type: "string" },
  "idle-timeout-ms": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "session-idle-days": { type: "string" },
  "ticket-lifetime-ms": { type: "string" },
  "login-grace-ms": { type: "string" },
  "busy-after-ms": { type: "string" },
} as const satisfies OptionSpecs;

const CLIENT_OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: "boolean" },
  "stall-timeout-ms": { type: "string" },
  "request-timeout-ms": { type: "string" },
  "ticket-grace-ms": { type: "string" },
  "upload-limit-kib": { type: "string" },
  "download-limit-kib": { type: "string" },
  "state-dir": { type: "string" },
  "tracker-fingerprint": { type: "string" },
  tracker: { type: "string", multiple: true },
  "public-addr": { type: "string" },
} as const satisfies OptionSpecs;

/** The longest login grace period the tracker takes: a day. */
const MAX_LOGIN_GRACE_MS = 86_400_000;

function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new UsageError(`${what} must be a number from 0 to 65535, not "${text}"`);
  }
  return port;
}

function positiveNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(text)) {
    throw new UsageError(`${what} must be a positive number, not "${text}"`);
  }
  return Number(text);
}

function nonNegativeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) > CLOCK_SKEW_MS) {
    throw new UsageError(
      `${what} must be a whole number from 0 to ${CLOCK_SKEW_MS}, not "${text}"`,
    );
  }
  return Number(text);
}

function parseHostPort(text: string | undefined, what: string): PeerAddress | undefined {
  if (text === undefined) return undefined;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : 0;
  if (!match || port < 1 || port > 65535) {
    throw new UsageError(`${what} must be HOST:PORT (port 1-65535), not "${text}"`);
  }
  return { host: match[1] ?? match[2], port };
}

function parseHost(text: string, what: string): string {
  if (text.length === 0 || text.startsWith("-")) throw new UsageError(`${what} is missing`);
  return text;
}

/** How this run's paths resolve: against where the user started it, `~` at their home. */
function startPlace(): ResolveOptions {
  let projectDir: string | undefined;
  try {
    projectDir = Deno.realPathSync(new URL(".", import.meta.url));
  } catch {
    // a compiled binary has no project directory on disk: deno task never runs it
  }
  return { base: startDirectory({ env: Deno.env, cwd: Deno.cwd(), projectDir }), env: Deno.env };
}

/** An option's path, absolute; a path that cannot be expanded is a usage error naming it. */
function optionPath(text: string | undefined, option: string, place: ResolveOptions) {
  if (text === undefined) return undefined;
  try {
    return resolveUserPath(text, place);
  } catch (error) {
    throw new UsageError(`${option}: ${errorMessage(error)}`);
  }
}

/** The log a program writes, as --log, --quiet and --verbose say. */
interface ProgramLog {
  logger: Logger;
  /** The file behind it, when --log named one. */
  file?: string;
  close(): void;
}

function checkLogOptions(values: { quiet?: boolean; verbose?: boolean }): void {
  if (values.quiet && values.verbose) {
    throw new UsageError("--quiet and --verbose cannot go together");
  }
}

/**
 * Opens the log: to `--log FILE` (appended) when given, else to `fallback` (none: no log);
 * at info, warn with --quiet, debug with --verbose.
 */
function openProgramLog(
  values: { log?: string; quiet?: boolean; verbose?: boolean },
  place: ResolveOptions,
  fallback: (verbose: boolean) => ((line: string) => void) | undefined,
): ProgramLog {
  const level = values.quiet ? "warn" : values.verbose ? "debug" : "info";
  const file = optionPath(values.log, "--log", place);
  if (file === undefined) {
    return { logger: new Logger({ level, write: fallback(values.verbose === true) }), close() {} };
  }
  const sink = openLogFile(file);
  return { logger: new Logger({ level, write: sink.write }), file, close: sink.close };
}

const toStdout = (line: string) => writeLineQuietly(Deno.stdout, line);
const toStderr = (line: string) => writeLineQuietly(Deno.stderr, line);

/**
 * Signals that stop the tracker: Ctrl-C, `kill`, and its terminal going away. Their listeners
 * stay until the process exits: started through `npx ... task`, Ctrl-C reaches the tracker
 * once from the terminal and again from the wrappers passing it on (npm exec, deno task),
 * and a repeat that found no listener would kill the tracker with its default action in the
 * middle of its clean stop.
 */
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** How long the tracker's clean stop may take before it gives up and exits anyway. */
const STOP_LIMIT_MS = 10_000;

async function runServer(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(args, SERVER_OPTIONS);
  if (positionals.length !== 2) {
    throw new UsageError(
      `server takes <ip> <port>, not ${positionals.length} argument${
        positionals.length === 1 ? "" : "s"
      }`,
    );
  }
  const place = startPlace();
  const certPath = optionPath(values["tls-cert"], "--tls-cert", place);
  const keyPath = optionPath(values["tls-key"], "--tls-key", place);
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const plaintext = values["insecure-plaintext"] === true;
  if (plaintext && certPath !== undefined) {
    throw new UsageError("--insecure-plaintext cannot be used with --tls-cert");
  }
  const hostname = parseHost(positionals[0], "<ip>");
  const port = parsePort(positionals[1], "<port>");
  const idleTimeoutMs = positiveNumber(values["idle-timeout-ms"], "--idle-timeout-ms");
  const sessionIdleDays = positiveNumber(values["session-idle-days"], "--session-idle-days");
  const ticketLifetimeMs = positiveNumber(values["ticket-lifetime-ms"], "--ticket-lifetime-ms");
  const loginGraceMs = positiveNumber(values["login-grace-ms"], "--login-grace-ms");
  if (loginGraceMs !== undefined && loginGraceMs > MAX_LOGIN_GRACE_MS) {
    // a timer longer than 2^31 - 1 ms would fire at once
    throw new UsageError(
      `--login-grace-ms must be a whole number of ms up to ${MAX_LOGIN_GRACE_MS} (a day)`,
    );
  }
  if (
    ticketLifetimeMs !== undefined &&
    (!Number.isInteger(ticketLifetimeMs) || ticketLifetimeMs > TICKET_LIFETIME_MS)
  ) {
    throw new UsageError(
      `--ticket-lifetime-ms must be a whole number of ms up to ${TICKET_LIFETIME_MS}`,
    );
  }
  const busyAfterMs = positiveNumber(values["busy-after-ms"], "--busy-after-ms");
  // a postgres:// URL is not a path to resolve
  const dbOption = values.db !== undefined && isPostgresUrl(values.db)
    ? values.db
    : optionPath(values.db, "--db", place);
  checkLogOptions(values);
  let log: ProgramLog | undefined;
  let tracker: Tracker;
  let dbPath: string;
  try {
    log = openProgramLog(values, place, () => toStdout);
    if (dbOption !== undefined) {
      dbPath = dbOption;
    } else {
      const stateDir = defaultTrackerStateDir(place.env);
      await makePrivateDir(stateDir, "state directory");
      dbPath = join(stateDir, TRACKER_DB_FILE);
    }
    tracker = await Tracker.start({
      hostname,
      port,
      dbPath,
      idleTimeoutMs,
      tlsFiles: certPath && keyPath ? { certPath, keyPath } : undefined,
      insecurePlaintext: plaintext,
      sessionMaxIdleMs: sessionIdleDays === undefined ? undefined : sessionIdleDays * 86_400_000,
      ticketLifetimeMs,
      loginGraceMs,
      busyAfterMs,
      logger: log.logger,
    });
  } catch (error) {
    log?.close();
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
  const { logger } = log;
  // these lines are read by scripts (and tests): on stdout as they are, whatever the log
  const say = (line: string) => {
    toStdout(line);
    if (log.file !== undefined) logger.info(line);
  };
  const { hostname: boundHost, port: boundPort } = tracker.address;
  say(`tracker listening on ${boundHost}:${boundPort}`);
  if (tracker.fingerprint === undefined) {
    say("tracker links in clear (--insecure-plaintext)");
    console.error(PLAINTEXT_WARNING);
  } else {
    say(`tracker fingerprint ${formatFingerprint(tracker.fingerprint)}`);
  }
  // never the password of a postgres:// URL: this line goes to logs
  say(`tracker database ${describeDb(dbPath)}`);
  const stopping = Promise.withResolvers<Deno.Signal>();
  let signalled = false;
  for (const signal of STOP_SIGNALS) {
    Deno.addSignalListener(signal, () => {
      if (signalled) return logger.debug(`${signal} while stopping: already stopping`);
      signalled = true;
      stopping.resolve(signal);
    });
  }
  const signal = await stopping.promise;
  logger.info(`tracker stopping (${signal})`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    tracker.close().then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), STOP_LIMIT_MS)),
  ]).finally(() => clearTimeout(timer));
  if (!closed) {
    logger.error(`the tracker did not stop within ${STOP_LIMIT_MS / 1000} s; exiting anyway`);
    log.close();
    return 1;
  }
  say("tracker stopped");
  log.close();
  return 0;
}

async function runClientCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(args, CLIENT_OPTIONS);
  if (positionals.length !== 4) {
    throw new UsageError(
      `client takes <client_ip> <client_port> <server_ip> <server_port>, not ${positionals.length} argument${
        positionals.length === 1 ? "" : "s"
      }`,
    );
  }
  const place = startPlace();
  checkLogOptions(values);
  const trackerHost = parseHost(positionals[2], "<server_ip>");
  const trackerPort = parsePort(positionals[3], "<server_port>");
  const options = {
    host: parseHost(positionals[0], "<client_ip>"),
    port: parsePort(positionals[1], "<client_port>"),
    trackerHost,
    trackerPort,
    alternateTrackers: parseTrackerList({ host: trackerHost, port: trackerPort }, values.tracker)
      .slice(1),
    json: values.json === true,
    stallTimeoutMs: positiveNumber(values["stall-timeout-ms"], "--stall-timeout-ms"),
    requestTimeoutMs: positiveNumber(values["request-timeout-ms"], "--request-timeout-ms"),
    ticketGraceMs: nonNegativeNumber(values["ticket-grace-ms"], "--ticket-grace-ms"),
    uploadLimitKib: positiveNumber(values["upload-limit-kib"], "--upload-limit-kib"),
    downloadLimitKib: positiveNumber(values["download-limit-kib"], "--download-limit-kib"),
    stateDir: optionPath(values["state-dir"], "--state-dir", place),
    trackerFingerprint: values["tracker-fingerprint"] === undefined
      ? undefined
      : parseFingerprint(values["tracker-fingerprint"]),
    publicAddress: parseHostPort(values["public-addr"], "--public-addr"),
    insecurePlaintext: values["insecure-plaintext"] === true,
    paths: place,
  };
  let log: ProgramLog;
  try {
    // the shell's stdout is its users' (and --json's): the client's log never goes there
    log = openProgramLog(values, place, (verbose) => verbose ? toStderr : undefined);
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
  try {
    return await runClient({ ...options, logger: log.logger });
  } finally {
    log.close();
  }
}

/** `--help`/`-h` or `--version`/`-V` among a program's arguments (before any `--`). */
function asks(args: string[], ...flags: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((arg) => flags.includes(arg));
}

const PROGRAMS = ["server", "client"];

/** Runs the program named by `args[0]`; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  const [program, ...rest] = args;
  if (program === "--help" || program === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (program === "--version" || program === "-V") {
    console.log(VERSION);
    return 0;
  }
  const usage = program === "server"
    ? `${SERVER_USAGE}\n\n${COMMON_USAGE}`
    : `${CLIENT_USAGE}\n\n${COMMON_USAGE}`;
  if (PROGRAMS.includes(program) && asks(rest, "--help", "-h")) {
    console.log(usage);
    return 0;
  }
  if (PROGRAMS.includes(program) && asks(rest, "--version", "-V")) {
    console.log(VERSION);
    return 0;
  }
  try {
    if (program === "server") return await runServer(rest);
    if (program === "client") return await runClientCommand(rest);
    if (program === undefined) throw new UsageError("no program given: server or client");
    const near = closestWord(program, PROGRAMS);
    throw new UsageError(
      `unknown program ${quoted(program)}` + (near ? `; did you mean ${near}?` : "") +
        "; the programs are server and client",
    );
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const hint = PROGRAMS.includes(program) ? `${program} --help` : "--help";
    console.error(`error: ${errorMessage(error)} (try "${hint}")`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
