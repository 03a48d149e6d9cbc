/**
 * The trackers a client may use: the one its argv names (`<server_ip> <server_port>`, the
 * seed) and the instances of the same deployment given with `--tracker HOST:PORT`, in the
 * order given. Parsed at the edge into typed addresses; every mistake is one `UsageError`
 * sentence naming the value.
 *
 * @example
 * ```ts
 * const trackers = parseTrackerList({ host: "127.0.0.1", port: 5000 }, ["127.0.0.1:5001"]);
 * // [{ host: "127.0.0.1", port: 5000, address: "127.0.0.1:5000" },
 * //  { host: "127.0.0.1", port: 5001, address: "127.0.0.1:5001" }]
 * ```
 *
 * @module
 */

import { UsageError } from "../lib/errors.ts";
import { quoted } from "../lib/protocol.ts";
import { normalizeAddress, trackerAddress } from "./state_dir.ts";

/**
 * The most `--tracker` options a client takes. Each is tried in turn on an outage, so the
 * list bounds one round of attempts (and the lines saying so); a deployment with more
 * instances than this puts a load balancer in front of them.
 */
export const MAX_EXTRA_TRACKERS = 16;

/** A tracker to dial: `host` as given, and `address` as known_trackers keys it. */
export interface TrackerAddress {
  host: string;
  port: number;
  /** `host:port` normalised (IPv6 in brackets), as pinned and as said to the user. */
  address: string;
}

/** The seed's address as a `TrackerAddress` (as given when it is no address to pin, e.g. port 0). */
export function seedTracker(host: string, port: number): TrackerAddress {
  try {
    return { host, port, address: trackerAddress(host, port) };
  } catch {
    return { host, port, address: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}` };
  }
}

/** Parses one `--tracker` value: `HOST:PORT` with a port from 1 to 65535, IPv6 as `[::1]:5000`. */
export function parseTrackerOption(text: string): TrackerAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s\/]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : 0;
  if (match && port >= 1 && port <= 65_535) {
    const host = match[1] ?? match[2];
    try {
      return { host, port, address: normalizeAddress(text) };
    } catch {
      // not a host name or IP literal: refused below
    }
  }
  throw new UsageError(
    `--tracker must be HOST:PORT (port 1-65535, IPv6 as [::1]:5000), not ${quoted(text)}`,
  );
}

/**
 * The seed followed by the `--tracker` values, in order. Refuses more than
 * `MAX_EXTRA_TRACKERS` values, a malformed one, and one naming a tracker already in the list
 * (the seed included).
 */
export function parseTrackerList(
  seed: { host: string; port: number },
  values: readonly string[] = [],
): TrackerAddress[] {
  if (values.length > MAX_EXTRA_TRACKERS) {
    throw new UsageError(
      `--tracker may be given at most ${MAX_EXTRA_TRACKERS} times, not ${values.length}`,
    );
  }
  const first = seedTracker(seed.host, seed.port);
  const list = [first];
  for (const value of values) {
    const tracker = parseTrackerOption(value);
    if (tracker.address === first.address) {
      throw new UsageError(
        `--tracker ${tracker.address} is the tracker given as <server_ip> <server_port>`,
      );
    }
    if (list.some((earlier) => earlier.address === tracker.address)) {
      throw new UsageError(`--tracker ${tracker.address} is given twice`);
    }
    list.push(tracker);
  }
  return list;
}
