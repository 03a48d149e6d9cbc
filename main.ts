/**
 * Swarmshare's one entry point: `server` runs the tracker, `client` runs a user's shell and
 * peer. Everything else lives in tracker/, peer/ and lib/.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoConfig from "./deno.json" with { type: "json" };
import { errorMessage, UsageError } from "./lib/errors.ts";
import { runClient } from "./peer/client.ts";
import { Tracker } from "./tracker/server.ts";

const VERSION = `swarmshare ${denoConfig.version}`;

const USAGE = `usage:
  server <ip> <port> [--db FILE] [--idle-timeout-ms N] [--session-idle-days N]
      run the tracker (state in FILE, default swarmshare-tracker.db); a login session
      unused for N days (default 14) is refused and deleted
  client <client_ip> <client_port> <server_ip> <server_port> [--json]
         [--stall-timeout-ms N] [--upload-limit-kib N]
      run a shell and peer: serves pieces on client_ip:client_port, talks to the tracker
      at server_ip:server_port; --json prints one JSON line per command; a download fails
      when a missing piece has no online holder for N ms (default 60000); uploads are
      limited to N KiB/s in all (default: no limit)
options: --help, --version`;

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
      "session-idle-days": { type: "string" },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 2) throw new UsageError("server takes <ip> <port>");
  const hostname = parseHost(positionals[0], "<ip>");
  const port = parsePort(positionals[1], "<port>");
  const idleTimeoutMs = positiveNumber(values["idle-timeout-ms"], "--idle-timeout-ms");
  const sessionIdleDays = positiveNumber(values["session-idle-days"], "--session-idle-days");
  let tracker: Tracker;
  try {
    tracker = await Tracker.start({
      hostname,
      port,
      dbPath: values.db ?? "swarmshare-tracker.db",
      idleTimeoutMs,
      sessionMaxIdleMs: sessionIdleDays === undefined ? undefined : sessionIdleDays * 86_400_000,
    });
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
  const { hostname: boundHost, port: boundPort } = tracker.address;
  console.log(`tracker listening on ${boundHost}:${boundPort}`);
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
      "upload-limit-kib": { type: "string" },
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
    uploadLimitKib: positiveNumber(values["upload-limit-kib"], "--upload-limit-kib"),
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
