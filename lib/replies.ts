/**
 * The client's check of what a tracker answers: every reply is held to the shape its request
 * type promises (`ResponseData` in protocol.ts) before any of it is used, so that a broken or
 * hostile tracker gets one clear `error:` line for the command that asked (`the tracker's
 * reply to list_groups is malformed: item 1: "members" is not a whole number`) rather than an
 * internal error, a wrong line (`its owner is undefined`), or a loop over pages that never
 * end. A tracker's refusal is checked alike: a known code and one bounded line of text.
 *
 * Fields a reply has beyond its shape are let through unread (a newer tracker may add some);
 * fields it lacks or holds in another type are not.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import {
  type ErrorCode,
  fileNameProblem,
  isSha1Hex,
  isValidId,
  MAX_CERT_PEM_LENGTH,
  MAX_SHARES_PER_RESTORE,
  type RequestType,
  type ResponseData,
} from "./protocol.ts";

/**
 * Items one list reply may hold: twenty times a page the tracker sends (500), far above any
 * list it answers with (50 peers, 100 sessions), and still a bound on the client's work.
 */
export const MAX_REPLY_ITEMS = 10_000;
/** Longest token, ticket key or ticket accepted (ours are under 1 KiB). */
const MAX_SECRET_LENGTH = 4096;
/** Longest free text a reply carries (a server name, a refusal's message). */
export const MAX_REPLY_TEXT = 1000;
/** Longest local path a `my_shares` record may name (Linux's PATH_MAX). */
const MAX_PATH_LENGTH = 4096;

/** A check of one value: undefined when it is acceptable, else what it should have been. */
type Check = (value: unknown) => string | undefined;

const anId: Check = (value) =>
  typeof value === "string" && isValidId(value) ? undefined : "is not a valid id";
const aFileName: Check = (value) =>
  typeof value === "string" && fileNameProblem(value) === undefined
    ? undefined
    : "is not a valid file name";
const aCount: Check = (value) =>
  Number.isSafeInteger(value) && (value as number) >= 0 ? undefined : "is not a whole number";
const aSha1: Check = (value) =>
  typeof value === "string" && isSha1Hex(value) ? undefined : "is not a SHA-1 in hex";
const aBoolean: Check = (value) => typeof value === "boolean" ? undefined : "is not true or false";
const aFingerprint: Check = (value) =>
  typeof value === "string" && /^[0-9a-f]{64}$/.test(value) ? undefined : "is not a fingerprint";

function text(max: number, pattern?: RegExp): Check {
  return (value) =>
    typeof value === "string" && value.length > 0 && value.length <= max &&
      (!pattern || pattern.test(value))
      ? undefined
      : `is not text of 1 to ${max} characters${pattern ? " in its alphabet" : ""}`;
}

const aSecret = text(MAX_SECRET_LENGTH, /^[A-Za-z0-9_.~+/=-]+$/);
/** Standard base64 (the bencoded info dictionary); its length is bounded by the frame. */
const aBase64: Check = (value) =>
  typeof value === "string" && value.length > 0 && value.length % 4 === 0 &&
    /^[A-Za-z0-9+/]*={0,2}$/.test(value)
    ? undefined
    : "is not base64";

function nullOr(check: Check): Check {
  return (value) => value === null ? undefined : check(value);
}

function optional(check: Check): Check & { optional: true } {
  return Object.assign((value: unknown) => value === undefined ? undefined : check(value), {
    optional: true as const,
  });
}

/** `problem` said of `where`: `item 2 is not an object`, `"peers": item 1: ...`. */
function at(where: string, problem: string): string {
  return /^(is|lacks|holds) /.test(problem) ? `${where} ${problem}` : `${where}: ${problem}`;
}

/** An object with (at least) these fields, each checked. */
function object(fields: Record<string, Check>): Check {
  return (value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return "is not an object";
    }
    for (const [name, check] of Object.entries(fields)) {
      const field = (value as Record<string, unknown>)[name];
      if (field === undefined && !("optional" in check)) return `lacks "${name}"`;
      const problem = check(field);
      if (problem) return at(`"${name}"`, problem);
    }
    return undefined;
  };
}

function list(item: Check, max = MAX_REPLY_ITEMS): Check {
  return (value) => {
    if (!Array.isArray(value)) return "is not a list";
    if (value.length > max) return `holds ${value.length} items, more than ${max}`;
    for (const [index, element] of value.entries()) {
      const problem = item(element);
      if (problem) return at(`item ${index + 1}`, problem);
    }
    return undefined;
  };
}

const aPeer = object({
  host: text(255),
  port: (value) =>
    Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536
      ? undefined
      : "is not a port",
  fingerprint: optional(aFingerprint),
  cert: optional(text(MAX_CERT_PEM_LENGTH, /-----BEGIN CERTIFICATE-----/)),
  device: optional(aFingerprint),
});
/** Peers in one reply: the tracker hands out at most 50. */
const somePeers = list(aPeer, 200);

const groupFile = {
  group: anId,
  name: aFileName,
  size: aCount,
  sha1: aSha1,
  info_hash: aSha1,
  // inline up to 512 KiB; a larger dictionary comes in get_info pages, of info_length bytes
  info: optional(aBase64),
  info_length: optional(aCount),
};

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "bad_request",
  "unsupported_version",
  "unauthenticated",
  "forbidden",
  "not_found",
  "conflict",
  "rate_limited",
  "busy",
  "internal",
]);

/** Replies whose data nothing reads: anything goes, and null is what the caller gets. */
const IGNORED: ReadonlySet<RequestType> = new Set(["ping", "logout"]);

const REPLIES: { [T in RequestType]: Check } = {
  hello: object({
    version: aCount,
    server: text(MAX_REPLY_TEXT),
    idle_timeout_ms: (value) =>
      Number.isSafeInteger(value) && (value as number) > 0 ? undefined : "is not a duration",
  }),
  ping: () => undefined,
  create_user: object({ user: anId }),
  login: object({ user: anId, token: aSecret, ticket_key: aSecret }),
  resume: object({ user: anId, ticket_key: aSecret }),
  logout: () => undefined,
  list_sessions: list(object({
    id: text(64, /^[0-9a-f]+$/),
    created_at: aCount,
    last_seen_at: aCount,
    fingerprint: nullOr(aFingerprint),
    current: aBoolean,
    online: aBoolean,
  })),
  end_sessions: object({ ended: aCount }),
  create_group: object({ group: anId, owner: anId }),
  join_group: object({ group: anId, status: text(32) }),
  leave_group: object({ group: anId, owner: nullOr(anId), deleted: aBoolean }),
  list_requests: list(object({ user: anId })),
  accept_request: object({ group: anId, user: anId }),
  reject_request: object({ group: anId, user: anId }),
  list_groups: list(object({ group: anId, owner: anId, members: aCount })),
  share_file: object({ group: anId, name: aFileName, size: aCount, sha1: aSha1, info_hash: aSha1 }),
  list_files: list(object({ name: aFileName, size: aCount, sha1: aSha1, seeders: aCount })),
  check_member: object({ group: anId, owner: anId }),
  locate_file: object({ ...groupFile, peers: somePeers, ticket: aSecret }),
  find_peers: object({ peers: somePeers, ticket: aSecret }),
  announce: nullOr(object({ peers: somePeers })),
  stop_share: object({
    group: anId,
    name: aFileName,
    file_removed: aBoolean,
    kept: optional(aBoolean),
  }),
  // one refusal per share asked about at most
  restore_shares: object({
    refused: list(
      object({
        group: anId,
        name: aFileName,
        code: (value) =>
          typeof value === "string" && ERROR_CODES.has(value) ? undefined : "is not an error code",
        message: text(MAX_REPLY_TEXT),
      }),
      MAX_SHARES_PER_RESTORE,
    ),
  }),
  put_info: object({ received: aCount }),
  get_info: object({ data: aBase64 }),
  my_shares: list(object({
    ...groupFile,
    path: text(MAX_PATH_LENGTH),
    mtime_ms: (value) =>
      typeof value === "number" && Number.isFinite(value) ? undefined : "is not a time",
  })),
};

/**
 * The data of a tracker's ok reply to `type`, checked against its shape. Throws
 * `ProtocolError` saying what is wrong with it.
 */
export function parseReply<T extends RequestType>(type: T, data: unknown): ResponseData[T] {
  if (IGNORED.has(type)) return null as ResponseData[T];
  const check = REPLIES[type];
  const problem = check ? check(data) : "answers a request the client never sends";
  if (problem) {
    const where = `the tracker's reply to ${type}`;
    throw new ProtocolError(
      /^(is|lacks|holds) /.test(problem)
        ? `${where} ${problem}`
        : `${where} is malformed: ${problem}`,
    );
  }
  return data as ResponseData[T];
}

/**
 * A tracker's refusal, as the client will show it: a known code (else "internal") and its
 * message as one line of at most `MAX_REPLY_TEXT` characters (line breaks written out as
 * `\n`, so that it cannot start a line of its own).
 */
export function parseRefusal(error: unknown): { code: ErrorCode; message: string } {
  const { code, message } = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
  };
  const known = typeof code === "string" && ERROR_CODES.has(code);
  let text = typeof message === "string" && message.length > 0
    ? message.replaceAll("\r", "\\r").replaceAll("\n", "\\n")
    : "request refused";
  if (text.length > MAX_REPLY_TEXT) text = `${text.slice(0, MAX_REPLY_TEXT)}...`;
  return { code: known ? code as ErrorCode : "internal", message: text };
}
