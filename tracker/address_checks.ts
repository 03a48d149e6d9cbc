/**
 * Checks that a client's serving address leads to that client, before the tracker hands it
 * to any downloader (issue 13). With TLS the tracker connects back to the address the client
 * gave in its hello and accepts it only if the certificate presented there is exactly the
 * serving certificate registered in that hello (same SHA-256): a wrong `--public-addr`, a
 * closed port, or someone else's peer there is not handed out, and the client is told why.
 *
 * Every address is checked, also when its host is the one the connection comes from: that
 * host is seen, but its port is only claimed (on a shared host or behind one NAT it may be
 * another user's service), and a check costs one TLS handshake per link, bounded below. It
 * also catches the usual fault, a firewall or a missing port forward, so the user learns why
 * nobody downloads from them.
 *
 * The connect-back must not make the tracker a port scanner or an amplifier:
 *
 * - it is a TLS handshake and nothing else: no certificate of ours, no application byte; the
 *   socket is destroyed when the handshake is done, or after `timeoutMs` (5 s) in all,
 *   resolving the name included;
 * - at most `concurrency` (16) checks run at once, at most `maxWaiting` (256) wait; more are
 *   refused at once;
 * - one check per connection (after login, charged to the user), and a budget per user (10,
 *   then 10 a minute) and per address the connections come from (60, then 60 a minute): a
 *   check over budget waits for it up to a minute, beyond that it is refused with when to
 *   reconnect;
 * - never the tracker's own listening address; a loopback address only for a client whose
 *   connection comes from loopback, a private one (RFC 1918, link-local, CGNAT, ULA) only for
 *   one that comes from a non-public address; unspecified, multicast and reserved never.
 *
 * Without TLS (`--insecure-plaintext`) nothing at an address can prove who it is, so nothing
 * is dialled: an address is accepted only when its host is the one the connection comes from
 * (its port taken on trust, like everything in that mode), and refused otherwise.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { errorMessage } from "../lib/errors.ts";
import { formatFingerprint } from "../lib/identity.ts";
import type { PeerEndpoint } from "../lib/protocol.ts";
import {
  CertificateFetchError,
  fetchPeerCertificate,
  hostPort,
  sha256Hex,
} from "../lib/transport.ts";

/** How long one check may take in all: resolving, connecting, the TLS handshake. */
export const CHECK_TIMEOUT_MS = 5_000;

/** A budget of checks: `burst` at once, then `perMinute`. */
export interface CheckBudget {
  burst: number;
  perMinute: number;
}

/** How checks are made and bounded; every field but `trackerAddress` has a default. */
export interface AddressChecksOptions {
  /** Where the tracker listens: never dialled. */
  trackerAddress: { hostname: string; port: number };
  /** No TLS: nothing is dialled, only the seen host is accepted. Default false. */
  plaintext?: boolean;
  /** One check's time in all. Default `CHECK_TIMEOUT_MS`. */
  timeoutMs?: number;
  /** Checks connecting at once. Default 16. */
  concurrency?: number;
  /** Checks waiting for a slot or a budget at once; more are refused. Default 256. */
  maxWaiting?: number;
  /** Per user. Default 10, then 10 a minute. */
  perUser?: CheckBudget;
  /** Per address connections come from. Default 60, then 60 a minute. */
  perSource?: CheckBudget;
  /** The longest a check waits for its budget before it is refused. Default 60 s. */
  maxBudgetWaitMs?: number;
  /** Users and addresses whose budgets are remembered at once. Default 10,000. */
  maxTracked?: number;
  /** The certificate (DER) presented at an IP address; injectable for tests. */
  fetchCertificate?: typeof fetchPeerCertificate;
  /** A host name's first address; injectable for tests. */
  resolve?: (host: string) => Promise<string>;
  now?: () => number;
}

/** What one check is about: the endpoint from a hello, whose it is, where it came from. */
export interface CheckRequest {
  /** With `fingerprint` (the registered serving certificate) under TLS. */
  endpoint: PeerEndpoint;
  /** The logged-in user the check is charged to. */
  user: string;
  /** The address the client's connection comes from. */
  seenHost: string;
  /** The tracker's end of that connection (one of its own addresses). */
  localHost?: string;
}

/** One connection's address check: pending until settled once; failed for good after that. */
export class AddressCheck {
  #state: "pending" | "verified" | "failed" = "pending";
  #reason?: string;
  readonly #settled = Promise.withResolvers<void>();

  constructor(readonly endpoint: PeerEndpoint) {}

  get state(): "pending" | "verified" | "failed" {
    return this.#state;
  }

  /** Why the address is not handed out; undefined while pending or verified. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Resolves once the check is no longer pending. */
  get settled(): Promise<void> {
    return this.#settled.promise;
  }

  /** Ends the check; only the first outcome counts. */
  settle(outcome: { verified: true } | { verified: false; reason: string }): void {
    if (this.#state !== "pending") return;
    this.#state = outcome.verified ? "verified" : "failed";
    this.#reason = outcome.verified ? undefined : outcome.reason;
    this.#settled.resolve();
  }

  /** A verified address taken over by another client: not handed out from here any more. */
  supersede(reason: string): void {
    if (this.#state !== "verified") return;
    this.#state = "failed";
    this.#reason = reason;
  }
}

/** The tracker's address checks, bounded and shared by every connection. */
export class AddressChecks {
  readonly #options: AddressChecksOptions;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  readonly #maxBudgetWaitMs: number;
  readonly #users: TokenBuckets;
  readonly #sources: TokenBuckets;
  readonly #fetch: typeof fetchPeerCertificate;
  readonly #resolve: (host: string) => Promise<string>;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  readonly #jobs = new Set<Promise<void>>();
  readonly #slotQueue: (() => void)[] = [];
  #running = 0;
  #waiting = 0;

  constructor(options: AddressChecksOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
    this.#concurrency = options.concurrency ?? 16;
    this.#maxWaiting = options.maxWaiting ?? 256;
    this.#maxBudgetWaitMs = options.maxBudgetWaitMs ?? 60_000;
    const maxTracked = options.maxTracked ?? 10_000;
    this.#users = new TokenBuckets(options.perUser ?? { burst: 10, perMinute: 10 }, maxTracked);
    this.#sources = new TokenBuckets(options.perSource ?? { burst: 60, perMinute: 60 }, maxTracked);
    this.#fetch = options.fetchCertificate ?? fetchPeerCertificate;
    this.#resolve = options.resolve ?? (async (host) => (await lookup(host)).address);
    this.#now = options.now ?? Date.now;
  }

  /** Checks running (connecting) now, for tests and measurements. */
  get running(): number {
    return this.#running;
  }

  /** Checks waiting for a budget or a slot now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Starts checking `request.endpoint`; the check settles on its own, within its bounds. */
  start(request: CheckRequest): AddressCheck {
    const check = new AddressCheck(request.endpoint);
    const { endpoint } = request;
    const where = hostPort(endpoint.host, endpoint.port);
    if (this.#stop.signal.aborted) {
      check.settle({ verified: false, reason: "the tracker is shutting down" });
    } else if (this.#options.plaintext) {
      check.settle(
        sameHost(endpoint.host, request.seenHost) ? { verified: true } : {
          verified: false,
          reason: `the tracker runs without TLS (--insecure-plaintext) and cannot check who ` +
            `answers at ${where}; it hands out only the address this client's connection ` +
            `comes from (${request.seenHost})`,
        },
      );
    } else if (endpoint.fingerprint === undefined) {
      check.settle({
        verified: false,
        reason: `no serving certificate was registered for ${where}`,
      });
    } else if (this.#waiting >= this.#maxWaiting) {
      check.settle({
        verified: false,
        reason: `the tracker has too many address checks waiting; reconnect in a minute to ` +
          `have ${where} checked`,
      });
    } else {
      const budget = this.#reserve(request);
      if (typeof budget === "string") {
        check.settle({ verified: false, reason: budget });
      } else {
        // a check that can run now takes its slot now: only the ones that wait are counted
        const runsNow = budget === 0 && this.#takeFreeSlot();
        if (!runsNow) this.#waiting++;
        const job = this.#run(check, request, runsNow ? undefined : budget)
          .finally(() => this.#jobs.delete(job));
        this.#jobs.add(job);
      }
    }
    return check;
  }

  /** Cancels every check (they fail) and waits until no socket of theirs is open. */
  async close(): Promise<void> {
    this.#stop.abort();
    for (const start of this.#slotQueue.splice(0)) start();
    await Promise.all(this.#jobs);
  }

  /** Takes the budget of a check: how long it must wait for it, or why it is refused. */
  #reserve(request: CheckRequest): number | string {
    const now = this.#now();
    const user = this.#users.take(request.user, now);
    const source = this.#sources.take(request.seenHost, now);
    const waitMs = Math.max(user, source);
    if (waitMs <= this.#maxBudgetWaitMs) return waitMs;
    this.#users.giveBack(request.user, now);
    this.#sources.giveBack(request.seenHost, now);
    const who = user >= source ? `user ${request.user}` : `address ${request.seenHost}`;
    const seconds = Math.max(1, Math.ceil((waitMs - this.#maxBudgetWaitMs) / 1000));
    return `too many address checks for ${who} lately; reconnect in ${seconds} s to have ` +
      `${hostPort(request.endpoint.host, request.endpoint.port)} checked`;
  }

  /**
   * Runs a check: in its slot already (`budgetWaitMs` undefined), or after waiting for its
   * budget and then a slot.
   */
  async #run(
    check: AddressCheck,
    request: CheckRequest,
    budgetWaitMs: number | undefined,
  ): Promise<void> {
    const where = hostPort(request.endpoint.host, request.endpoint.port);
    try {
      if (budgetWaitMs !== undefined) {
        try {
          if (budgetWaitMs > 0) await abortableDelay(budgetWaitMs, this.#stop.signal);
          await this.#slot();
        } finally {
          this.#waiting--;
        }
      }
      try {
        if (this.#stop.signal.aborted) throw new Error("the tracker is shutting down");
        const reason = await this.#verify(request);
        check.settle(reason === undefined ? { verified: true } : { verified: false, reason });
      } finally {
        this.#running--;
        this.#slotQueue.shift()?.();
      }
    } catch (error) {
      check.settle({
        verified: false,
        reason: `the tracker could not check ${where}: ${errorMessage(error)}`,
      });
    }
  }

  /** Takes a running slot if one is free and nobody waits for one. */
  #takeFreeSlot(): boolean {
    if (this.#running >= this.#concurrency || this.#slotQueue.length > 0) return false;
    this.#running++;
    return true;
  }

  /** A running slot: at once when one is free, else in turn. */
  #slot(): Promise<void> {
    if (this.#takeFreeSlot()) return Promise.resolve();
    return new Promise((resolve) =>
      this.#slotQueue.push(() => {
        this.#running++;
        resolve();
      })
    );
  }

  /** Undefined when the endpoint leads to its client, else why not (for the user). */
  async #verify(request: CheckRequest): Promise<string | undefined> {
    const { endpoint } = request;
    const where = hostPort(endpoint.host, endpoint.port);
    const deadline = new AbortController();
    const onStop = () => deadline.abort();
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    const timer = setTimeout(() => deadline.abort(), this.#timeoutMs);
    const started = performance.now();
    try {
      let address = normalizeIp(endpoint.host);
      if (isIP(address) === 0) {
        try {
          address = normalizeIp(await abortable(this.#resolve(endpoint.host), deadline.signal));
        } catch (error) {
          return `${shownHost(endpoint.host)} cannot be resolved (${errorMessage(error)})`;
        }
      }
      const problem = this.#targetProblem(address, request);
      if (problem) return problem;
      let der: Uint8Array;
      try {
        der = await this.#fetch({
          hostname: address,
          port: endpoint.port,
          servername: isIP(endpoint.host) === 0 ? endpoint.host : undefined,
          timeoutMs: Math.max(1, this.#timeoutMs - (performance.now() - started)),
          signal: deadline.signal,
        });
      } catch (error) {
        return fetchFailure(error, where, this.#timeoutMs);
      }
      const presented = sha256Hex(der);
      if (presented !== endpoint.fingerprint) {
        return `${where} presented another certificate (${formatFingerprint(presented)}) ` +
          `than the one this client serves with (${formatFingerprint(endpoint.fingerprint!)}): ` +
          `another program or peer answers there`;
      }
      return undefined;
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }

  /** Why the tracker will not dial `address` for this request, if it will not. */
  #targetProblem(address: string, request: CheckRequest): string | undefined {
    const { endpoint } = request;
    const where = hostPort(endpoint.host, endpoint.port);
    const shown = address === endpoint.host ? where : `${where} (${address})`;
    const target = addressClass(address);
    if (target === "unusable") return `${shown} is not an address peers can connect to`;
    const tracker = this.#options.trackerAddress;
    const trackerHost = normalizeIp(tracker.hostname);
    const own = address === trackerHost || address === normalizeIp(request.localHost ?? "") ||
      (addressClass(trackerHost) === "unusable" && target === "loopback");
    if (own && endpoint.port === tracker.port) {
      return `${shown} is the tracker's own address, not a peer's`;
    }
    const seen = addressClass(normalizeIp(request.seenHost));
    if (target === "loopback" && seen !== "loopback") {
      return `${shown} is a loopback address, but this client's connection comes from ` +
        `${request.seenHost}: peers elsewhere cannot reach it there; give an address they can ` +
        `reach with --public-addr`;
    }
    if (target === "private" && seen === "public") {
      return `${shown} is a private address, but this client's connection comes from ` +
        `${request.seenHost}: peers elsewhere cannot reach it there; forward a public port ` +
        `to it and give that address with --public-addr`;
    }
    return undefined;
  }
}

/** The user's message for a failed handshake at `where`. */
function fetchFailure(error: unknown, where: string, timeoutMs: number): string {
  if (!(error instanceof CertificateFetchError)) {
    return `the tracker could not check ${where}: ${errorMessage(error)}`;
  }
  switch (error.kind) {
    case "refused":
      return `nothing accepts connections at ${where} (connection refused)`;
    case "timeout":
      return `no TLS handshake with ${where} within ${timeoutMs / 1000} s ` +
        `(a firewall, or no port forwarding?)`;
    case "unreachable":
      return error.message;
    case "handshake":
      return `no TLS handshake with ${where}: ${error.message}`;
  }
}

/** What kind of address an IP is, for deciding whether the tracker may dial it. */
export type AddressClass = "loopback" | "private" | "public" | "unusable";

/**
 * The class of an IP address (a name is "public": only IPs are dialled). "private": RFC
 * 1918, link-local, CGNAT (100.64/10) and IPv6 unique-local and link-local; "unusable":
 * unspecified, multicast, broadcast and reserved.
 */
export function addressClass(ip: string): AddressClass {
  const address = normalizeIp(ip);
  const version = isIP(address);
  if (version === 4) {
    const [a, b] = address.split(".").map(Number);
    if (a === 0 || a >= 224) return "unusable";
    if (a === 127) return "loopback";
    if (
      a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127)
    ) {
      return "private";
    }
    return "public";
  }
  if (version === 6) {
    const words = ipv6Words(address);
    if (words.every((word) => word === 0)) return "unusable";
    if (words.slice(0, 7).every((word) => word === 0) && words[7] === 1) return "loopback";
    if ((words[0] & 0xff00) === 0xff00) return "unusable";
    if ((words[0] & 0xffc0) === 0xfe80 || (words[0] & 0xfe00) === 0xfc00) return "private";
    return "public";
  }
  return "public";
}

/** An IP as compared here: lowercase, IPv4-mapped IPv6 as IPv4, no zone. */
export function normalizeIp(host: string): string {
  const lower = host.toLowerCase().replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1];
  if (isIP(lower) === 6) return ipv6Words(lower).map((word) => word.toString(16)).join(":");
  return lower;
}

/** True when a claimed host is the seen one (both IPs; a name never is). */
function sameHost(claimed: string, seen: string): boolean {
  return isIP(normalizeIp(claimed)) !== 0 && normalizeIp(claimed) === normalizeIp(seen);
}

/** The eight 16-bit words of an IPv6 address (valid, per `isIP`). */
function ipv6Words(address: string): number[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${
      ((c << 8) | d).toString(16)
    }`;
  }
  const [head, tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array(zeros).fill("0"), ...right].map((word) => parseInt(word, 16));
}

/** A claimed host name as it may appear in a message (it is the client's own text). */
function shownHost(host: string): string {
  // deno-lint-ignore no-control-regex
  return host.replace(/[\x00-\x1f\x7f-\x9f]/g, "?").slice(0, 255);
}

/**
 * Token buckets by key: `burst` tokens, refilled at `perMinute`. A take may go into debt: it
 * returns how long until its token is there, so work waits its turn instead of failing.
 */
class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxTracked: number;

  constructor(budget: CheckBudget, maxTracked: number) {
    this.#burst = budget.burst;
    this.#perMs = budget.perMinute / 60_000;
    this.#maxTracked = maxTracked;
  }

  /** Takes a token for `key`; the ms until it is there (0: now). */
  take(key: string, now: number): number {
    const bucket = this.#refilled(key, now);
    bucket.tokens -= 1;
    return bucket.tokens >= 0 ? 0 : Math.ceil(-bucket.tokens / this.#perMs);
  }

  /** Gives back a token taken for work that will not run. */
  giveBack(key: string, now: number): void {
    const bucket = this.#refilled(key, now);
    bucket.tokens = Math.min(this.#burst, bucket.tokens + 1);
  }

  #refilled(key: string, now: number): { tokens: number; at: number } {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs);
      bucket.at = now;
      return bucket;
    }
    // bounded: full buckets are as good as none; past that the oldest go first
    if (this.#buckets.size >= this.#maxTracked) {
      for (const [other, { tokens, at }] of this.#buckets) {
        if (tokens + (now - at) * this.#perMs >= this.#burst) this.#buckets.delete(other);
      }
      while (this.#buckets.size >= this.#maxTracked) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    }
    bucket = { tokens: this.#burst, at: now };
    this.#buckets.set(key, bucket);
    return bucket;
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error("the tracker is shutting down"));
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", stop, { once: true });
    function done() {
      signal.removeEventListener("abort", stop);
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      reject(new Error("the tracker is shutting down"));
    }
  });
}

/** `promise`, or a rejection once `signal` aborts (the work itself may go on unobserved). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("no answer in time"));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error("no answer in time"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
