/**
 * Swarmshare's one entry point: `server` runs the tracker, `client` runs a user's shell and
 * peer. Everything else lives in tracker/, peer/ and lib/.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoConfig from "./deno.json" with { type: "json" };
import { errorMessage, UsageError } from "./lib/errors.ts";
import { formatFingerprint, parseFingerprint } from "./lib/identity.ts";
import type { PeerAddress } from "./lib/protocol.ts";
import { CLOCK_SKEW_MS, TICKET_LIFETIME_MS } from "./lib/ticket.ts";
import { PLAINTEXT_WARNING, runClient } from "./peer/client.ts";
import { Tracker } from "./tracker/server.ts";

const VERSION = `swarmshare ${denoConfig.version}`;

const USAGE = `usage:
  server <ip> <port> [--db FILE] [--idle-timeout-ms N] [--session-idle-days N]
         [--tls-cert FILE --tls-key FILE] [--ticket-lifetime-ms N] [--login-grace-ms N]
         [--busy-after-ms N]
      run the tracker (state in FILE, default swarmshare-tracker.db); a login session
      unused for N days (default 14) is refused and deleted; download tickets are valid
      for --ticket-lifetime-ms (default and most 600000); a connection not logged in for
      --login-grace-ms (default 60000) is closed; it prints its certificate's
      fingerprint, which clients pin; --tls-cert/--tls-key: present your own certificate
      chain and key (PEM) instead of the tracker's own; a request that waited longer than
      --busy-after-ms (default 5000) for its turn is answered "the tracker is busy"
  client <client_ip> <client_port> <server_ip> <server_port> [--json]
         [--stall-timeout-ms N] [--upload-limit-kib N] [--download-limit-kib N]
         [--state-dir DIR] [--ticket-grace-ms N] [--tracker-fingerprint SHA256]
         [--public-addr HOST:PORT] [--request-timeout-ms N]
      run a shell and peer: serves pieces on client_ip:client_port, talks to the tracker
      at server_ip:server_port; --json prints one JSON line per command; a download waits
      for a peer that holds what it misses (with --stall-timeout-ms N it fails after N ms
      without one); uploads and downloads are limited to N KiB/s in all (default: no
      limit; set_limits changes both while it runs); identity and pinned trackers live in
      DIR (default $XDG_STATE_HOME/swarmshare or ~/.local/state/swarmshare); the tracker
      must present the given fingerprint (default: trusted on first use, then pinned);
      peers reach this client at HOST:PORT (default client_ip:client_port); a peer's
      ticket is honoured until N ms past its expiry (clock skew, default and most 60000);
      a peer that delivers nothing for N ms with requests outstanding is dropped (30000)
options: --help, --version; --insecure-plaintext (both programs, for measurements only:
      every link in clear, no identity checked)`;

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

async function runServer(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      db: { type: "string" },
      "idle-timeout-ms": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "insecure-plaintext": { type: "boolean", default: false },
      "session-idle-days": { type: "string" },
      "ticket-lifetime-ms": { type: "string" },
      "login-grace-ms": { type: "string" },
      "busy-after-ms": { type: "string" },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 2) throw new UsageError("server takes <ip> <port>");
  const certPath = values["tls-cert"];
  const keyPath = values["tls-key"];
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const plaintext = values["insecure-plaintext"];
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
  let tracker: Tracker;
  try {
    tracker = await Tracker.start({
      hostname,
      port,
      dbPath: values.db ?? "swarmshare-tracker.db",
      idleTimeoutMs,
      tlsFiles: certPath && keyPath ? { certPath, keyPath } : undefined,
      insecurePlaintext: plaintext,
      sessionMaxIdleMs: sessionIdleDays === undefined ? undefined : sessionIdleDays * 86_400_000,
      ticketLifetimeMs,
      loginGraceMs,
      busyAfterMs,
    });
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
  const { hostname: boundHost, port: boundPort } = tracker.address;
  console.log(`tracker listening on ${boundHost}:${boundPort}`);
  if (tracker.fingerprint === undefined) {
    console.log("tracker links in clear (--insecure-plaintext)");
    console.error(PLAINTEXT_WARNING);
  } else {
    console.log(`tracker fingerprint ${formatFingerprint(tracker.fingerprint)}`);
  }
  const stopped = Promise.withResolvers<void>();
  const stop = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await stopped.promise;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  await tracker.close();
  console.log("tracker stopped");
  return 0;
}

function runClientCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      json: { type: "boolean", default: false },
      "stall-timeout-ms": { type: "string" },
      "request-timeout-ms": { type: "string" },
      "ticket-grace-ms": { type: "string" },
      "upload-limit-kib": { type: "string" },
      "download-limit-kib": { type: "string" },
      "state-dir": { type: "string" },
      "tracker-fingerprint": { type: "string" },
      "public-addr": { type: "string" },
      "insecure-plaintext": { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 4) {
    throw new UsageError("client takes <client_ip> <client_port> <server_ip> <server_port>");
  }
  return runClient({
    host: parseHost(positionals[0], "<client_ip>"),
    port: parsePort(positionals[1], "<client_port>"),
    trackerHost: parseHost(positionals[2], "<server_ip>"),
    trackerPort: parsePort(positionals[3], "<server_port>"),
    json: values.json,
    stallTimeoutMs: positiveNumber(values["stall-timeout-ms"], "--stall-timeout-ms"),
    requestTimeoutMs: positiveNumber(values["request-timeout-ms"], "--request-timeout-ms"),
    ticketGraceMs: nonNegativeNumber(values["ticket-grace-ms"], "--ticket-grace-ms"),
    uploadLimitKib: positiveNumber(values["upload-limit-kib"], "--upload-limit-kib"),
    downloadLimitKib: positiveNumber(values["download-limit-kib"], "--download-limit-kib"),
    stateDir: values["state-dir"],
    trackerFingerprint: values["tracker-fingerprint"] === undefined
      ? undefined
      : parseFingerprint(values["tracker-fingerprint"]),
    publicAddress: parseHostPort(values["public-addr"], "--public-addr"),
    insecurePlaintext: values["insecure-plaintext"],
  });
}

/** Runs the program named by `args[0]`; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  const [program, ...rest] = args;
  if (rest.includes("--help") || program === "--help" || program === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (rest.includes("--version") || program === "--version") {
    console.log(VERSION);
    return 0;
  }
  try {
    if (program === "server") return await runServer(rest);
    if (program === "client") return await runClientCommand(rest);
    throw new UsageError(program ? `unknown program "${program}"` : "no program given");
  } catch (error) {
    const isUsage = error instanceof UsageError ||
      (error instanceof TypeError && "code" in error &&
        String(error.code).startsWith("ERR_PARSE_ARGS"));
    if (!isUsage) throw error;
    console.error(`error: ${errorMessage(error)}\n${USAGE}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
