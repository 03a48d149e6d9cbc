/**
 * The tracker link's messages: what a client may ask, what the tracker answers, and the
 * validation that turns an untrusted frame into a typed request. Both programs import this
 * module, so the two ends cannot drift apart.
 *
 * Every request is `{id, type, ...params}`; every reply is `{id, ok: true, data}` or
 * `{id, ok: false, error: {code, message}}` with the same `id`. The first request on a
 * connection must be `hello` carrying `PROTOCOL_VERSION`. The tracker may also send a push
 * of its own at any time: a frame with no `id` and a `push` kind (see `Push`).
 *
 * @module
 */

import { ProtocolError, UserError } from "./errors.ts";

/** Bumped whenever a message changes shape; the tracker refuses other versions. */
export const PROTOCOL_VERSION = 2;

/** Longest certificate (PEM) a client may register as its serving certificate. */
export const MAX_CERT_PEM_LENGTH = 8192;

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_PASSWORD_LENGTH = 1024;

/** True when `id` is a valid user or group id: 1 to 64 of `A-Z a-z 0-9 _ . -`. */
export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** Why `id` is not a valid user or group id, or `undefined` when it is. */
export function idProblem(kind: "user" | "group", id: string): string | undefined {
  if (isValidId(id)) return undefined;
  return `invalid ${kind} id ${quoted(id)}: use 1 to 64 characters from A-Z a-z 0-9 _ . -`;
}

/** Why `password` is unacceptable, or `undefined` when it is fine. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return "the password must not be empty";
  if (password.length > MAX_PASSWORD_LENGTH) {
    return `the password is longer than ${MAX_PASSWORD_LENGTH} characters`;
  }
  return undefined;
}

const MAX_FILE_NAME_BYTES = 255;
/** What a download's part file adds around the name: `.` before, this after. */
export const PART_FILE_SUFFIX = ".swarmshare-part";
/**
 * The longest name that can be downloaded: its part file `.NAME.swarmshare-part` must fit
 * the file systems' 255 bytes too.
 */
export const MAX_SHARED_NAME_BYTES = MAX_FILE_NAME_BYTES - 1 - PART_FILE_SUFFIX.length;
/**
 * Characters a name may not hold: C0 controls, DEL, C1 controls, and the bidirectional
 * controls that make a terminal show a name other than it is (`gnp.exe` as `exe.png`).
 */
const FORBIDDEN_NAME_CHARACTERS =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Why `name` cannot be a shared file's name, or `undefined` when it can. */
export function fileNameProblem(name: string): string | undefined {
  if (name.length === 0) return "the file name is empty";
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_SHARED_NAME_BYTES) {
    return `the file name "${shownName(name)}" is ${bytes} bytes long; at most ` +
      `${MAX_SHARED_NAME_BYTES} can be shared (its download's part file must fit 255)`;
  }
  if (name === "." || name === ".." || /[/\\]/.test(name)) {
    return `"${shownName(name)}" cannot be a file name: no slashes, "." or ".."`;
  }
  if (FORBIDDEN_NAME_CHARACTERS.test(name)) {
    return `"${
      shownName(name)
    }" cannot be a file name: it holds control or text-direction characters`;
  }
  if (name.startsWith(".") && name.endsWith(PART_FILE_SUFFIX)) {
    return `"${
      shownName(name)
    }" cannot be a file name: downloads use such names for their part files`;
  }
  return undefined;
}

/**
 * Something received, quoted for a message: controls escaped, at most 100 characters (a
 * hostile peer's megabyte never travels back in an error).
 */
export function quoted(text: string): string {
  return `"${shownName(text)}"`;
}

/** A name as it can be printed safely: controls as \u escapes, at most 100 characters. */
export function shownName(name: string): string {
  const escaped = name.replace(
    new RegExp(FORBIDDEN_NAME_CHARACTERS.source, "g"),
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return escaped.length > 100 ? `${escaped.slice(0, 100)}...` : escaped;
}

/** True for a lowercase hex SHA-1 (40 characters). */
export function isSha1Hex(text: string): boolean {
  return /^[0-9a-f]{40}$/.test(text);
}

/** Where a client serves pieces to other peers. */
export interface PeerAddress {
  host: string;
  port: number;
}

/**
 * A serving peer as downloaders get it from the tracker: where to dial, and the certificate
 * (PEM) it must present there with its SHA-256 fingerprint (hex). Both are absent when the
 * tracker runs in plaintext.
 */
export interface PeerEndpoint extends PeerAddress {
  fingerprint?: string;
  cert?: string;
  /**
   * The fingerprint of the certificate that peer showed the tracker (its device identity):
   * the holder its own tickets name, when it asks us for pieces on the connection we open.
   */
  device?: string;
}

/** Every request a client can send, by `type`. */
export type Request =
  | {
    type: "hello";
    version: number;
    peer?: PeerAddress;
    /** The certificate (PEM) this client presents to peers on `peer`. */
    peer_cert?: string;
    /**
     * Push kinds this client understands beyond `revoke` (which every client does), e.g.
     * `["address_check"]`; the tracker sends no other. Absent: none.
     */
    pushes?: string[];
  }
  | { type: "ping" }
  | { type: "create_user"; user: string; password: string }
  | { type: "login"; user: string; password: string }
  | { type: "resume"; token: string }
  | { type: "logout" }
  | { type: "list_sessions" }
  /** `scope`: "all", "others" (every session but this connection's), or one session's id. */
  | { type: "end_sessions"; scope: string }
  | { type: "create_group"; group: string }
  | { type: "join_group"; group: string }
  | { type: "leave_group"; group: string }
  | { type: "list_requests"; group: string }
  | { type: "accept_request"; group: string; user: string }
  /** Turns down a pending request to join (owner only); the requester is told. */
  | { type: "reject_request"; group: string; user: string }
  /**
   * One page of the tracker's groups, by name, after `after`: the client asks again after
   * the last it got until a page comes back empty. `limit`: at most this many (the tracker's
   * page size, 500, when absent or larger).
   */
  | { type: "list_groups"; after?: string; limit?: number }
  | {
    type: "share_file";
    group: string;
    name: string;
    size: number;
    sha1: string;
    /**
     * The bencoded info dictionary, base64, when it fits one page (lib/info_pages.ts);
     * otherwise absent, and `info_hash` names the dictionary this connection sent in
     * `put_info` pages just before.
     */
    info?: string;
    info_hash?: string;
    path: string;
    mtime_ms: number;
  }
  /**
   * One page of an info dictionary too large for one frame, of a file this connection is about
   * to share: `length` is the whole dictionary's, `offset` the page's (pages in order, each
   * `INFO_PAGE_BYTES` but the last), `data` the page in base64. The tracker keeps one such
   * dictionary per connection until `share_file` takes it.
   */
  | { type: "put_info"; info_hash: string; length: number; offset: number; data: string }
  /**
   * One page of the info dictionary of a file in `group` (a member asks), at `offset`: for
   * dictionaries that `locate_file` and `my_shares` do not carry inline.
   */
  | { type: "get_info"; group: string; info_hash: string; offset: number }
  /** One page of the group's files, by name, after `after` (paged as `list_groups`). */
  | { type: "list_files"; group: string; after?: string; limit?: number }
  /** Whether the user is a member of `group` (refused, "forbidden", when not). */
  | { type: "check_member"; group: string }
  | { type: "locate_file"; group: string; name: string }
  | { type: "find_peers"; group: string; info_hash: string }
  /**
   * A partial holder says it is downloading (it holds and serves the pieces it verified) or
   * stopped. Announcing "downloading" is answered with holders of the file, as `find_peers`
   * names them but without a ticket: of two downloaders that start together, the one that
   * announces second learns of the first at once, without asking again.
   */
  | { type: "announce"; group: string; info_hash: string; state: string }
  /**
   * Ends the user's share of a file, on every client of theirs. With `keep_if_held`, the
   * client asking cannot serve the file itself (at login, it is gone or changed here): the
   * share ends only if no other client of the user holds the whole file now; otherwise only
   * this client lets go of it, and the reply says `kept`.
   */
  | { type: "stop_share"; group: string; name: string; keep_if_held?: boolean }
  /**
   * One page of the user's shares, in (group, name) order, after the given one: the client
   * asks again after the last it got until a page comes back empty.
   */
  | { type: "my_shares"; after_group?: string; after_name?: string }
  /**
   * Serves again, at login, shares the tracker remembers for the user (`my_shares`): at most
   * `MAX_SHARES_PER_RESTORE` in one request, each named as `my_shares` gave it, with the
   * path and mtime the client holds it at now. Each is checked as `share_file` checks a share
   * the user has already (a member of its group, the same info_hash), its path and mtime
   * recorded, and this connection holds it. A share the tracker refuses is named in the
   * reply's `refused` (with the code and message `share_file` would answer); the others are
   * served. It adds no share, so no per-user limit moves; a share the tracker no longer has is
   * refused (`not_found`), and the client shares it again with `share_file`, where the limits
   * are checked. Trackers before this request answer `bad_request`: a client then sends
   * `share_file` for each share, as before.
   */
  | { type: "restore_shares"; shares: ShareRestore[] };

/**
 * Shares one `restore_shares` request names at most: with paths of up to 4096 characters a
 * request may still pass the 1 MiB frame, so the client also stops a batch at
 * `MAX_RESTORE_REQUEST_BYTES` of JSON.
 */
export const MAX_SHARES_PER_RESTORE = 200;
/** Bytes of JSON the client puts in one `restore_shares` request at most, far inside a frame. */
export const MAX_RESTORE_REQUEST_BYTES = 512 * 1024;

/** One share named in `restore_shares`. */
export interface ShareRestore {
  group: string;
  name: string;
  info_hash: string;
  path: string;
  mtime_ms: number;
}

/** A share `restore_shares` did not serve, and why (as `share_file` would refuse it). */
export interface RestoreRefusal {
  group: string;
  name: string;
  code: ErrorCode;
  message: string;
}

/** The `type` of a request. */
export type RequestType = Request["type"];

/** A request as it travels: with the id its reply will carry. */
export type RequestFrame = Request & { id: number };

/** One group as `list_groups` reports it. */
export interface GroupSummary {
  group: string;
  owner: string;
  members: number;
}

/** One login session of the user, as `list_sessions` reports it. */
export interface SessionSummary {
  /** Public id: 8 hex of a SHA-256 of the token's digest; stable, reveals nothing. */
  id: string;
  /** ms since the epoch. */
  created_at: number;
  /** ms since the epoch; written at most once a minute per connection. */
  last_seen_at: number;
  /** SHA-256 (lowercase hex) of the client certificate that logged in; null without TLS. */
  fingerprint: string | null;
  /** True for the session of the connection that asked. */
  current: boolean;
  /** True while some connection acts under it. */
  online: boolean;
}

/** The data each request type answers with on success. */
export interface ResponseData {
  /** `idle_timeout_ms`: the client pings well within it to keep an idle link open. */
  hello: { version: number; server: string; idle_timeout_ms: number };
  ping: null;
  create_user: { user: string };
  /** `ticket_key`: the tracker's Ed25519 public key (raw, base64url) to check tickets with. */
  login: { user: string; token: string; ticket_key: string };
  resume: { user: string; ticket_key: string };
  logout: null;
  /** Newest first. */
  list_sessions: SessionSummary[];
  /** How many sessions ended. */
  end_sessions: { ended: number };
  create_group: { group: string; owner: string };
  join_group: { group: string; status: "pending" };
  leave_group: { group: string; owner: string | null; deleted: boolean };
  list_requests: { user: string }[];
  accept_request: { group: string; user: string };
  reject_request: { group: string; user: string };
  list_groups: GroupSummary[];
  share_file: { group: string; name: string; size: number; sha1: string; info_hash: string };
  list_files: FileSummary[];
  check_member: { group: string; owner: string };
  locate_file: FileLocation;
  find_peers: { peers: PeerEndpoint[]; ticket: string };
  /** `peers` for "downloading"; null for "stopped". */
  announce: { peers: PeerEndpoint[] } | null;
  /** `kept`: only with `keep_if_held`, true when another client of the user still holds it. */
  stop_share: { group: string; name: string; file_removed: boolean; kept?: boolean };
  my_shares: ShareRecord[];
  /** The shares not served, in request order; every other share of the request is served. */
  restore_shares: { refused: RestoreRefusal[] };
  /** `received`: bytes of the dictionary the tracker holds now. */
  put_info: { received: number };
  /** The page, base64. */
  get_info: { data: string };
}

/** One file as `list_files` reports it. */
export interface FileSummary {
  name: string;
  size: number;
  sha1: string;
  /** Online peers holding the whole file. */
  seeders: number;
}

/** A file shared in a group, as the tracker records it. */
export interface GroupFile {
  group: string;
  name: string;
  size: number;
  sha1: string;
  info_hash: string;
  /**
   * The bencoded info dictionary, base64, when it fits one page; otherwise absent, and
   * `get_info` hands it out in pages.
   */
  info?: string;
  /** Bytes of the bencoded info dictionary (absent from trackers before paging). */
  info_length?: number;
}

/** Everything a downloader needs to start: the torrent, who holds it, and a ticket. */
export interface FileLocation extends GroupFile {
  peers: PeerEndpoint[];
  ticket: string;
}

/** A share the tracker remembers for the user, to serve again after login. */
export interface ShareRecord extends GroupFile {
  path: string;
  mtime_ms: number;
}

/** States a client announces for a file it is downloading. */
export const ANNOUNCE_STATES = ["downloading", "stopped"] as const;

/** Machine-readable reason of a failed request. */
export type ErrorCode =
  | "bad_request"
  | "unsupported_version"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "conflict"
  /** Too many attempts from this address or on this account: try again later. */
  | "rate_limited"
  /** The tracker has more to answer than it can in time: ask again in a moment. */
  | "busy"
  | "internal";

/** A request the tracker refused; its code travels with the message meant for the user. */
export class Refusal extends UserError {
  override name = "Refusal";
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/**
 * The id of a reply that answers no request: the tracker's last word on a connection it is
 * about to close (`bad_request`: the connection broke the protocol; `unauthenticated`: it did
 * not log in within the tracker's grace period, and may connect again and log in). Clients
 * number their requests from 1, so it never matches one.
 */
export const CONNECTION_NOTICE_ID = 0;

/** True for the tracker's notice that it closes the connection for not logging in in time. */
export function isLoginDeadlineNotice(frame: Record<string, unknown>): boolean {
  const error = frame.error as { code?: unknown } | undefined;
  return frame.id === CONNECTION_NOTICE_ID && frame.ok === false &&
    error?.code === "unauthenticated";
}

/** A reply frame. */
export type Response =
  | { id: number; ok: true; data: unknown }
  | { id: number; ok: false; error: { code: ErrorCode; message: string } };

type Field = "string" | "number" | "boolean" | "peer" | "cert" | "kinds" | "restores";
const REQUEST_FIELDS: { [T in RequestType]: Record<string, Field> } = {
  hello: { version: "number" },
  ping: {},
  create_user: { user: "string", password: "string" },
  login: { user: "string", password: "string" },
  resume: { token: "string" },
  logout: {},
  list_sessions: {},
  end_sessions: { scope: "string" },
  create_group: { group: "string" },
  join_group: { group: "string" },
  leave_group: { group: "string" },
  list_requests: { group: "string" },
  accept_request: { group: "string", user: "string" },
  reject_request: { group: "string", user: "string" },
  list_groups: {},
  share_file: {
    group: "string",
    name: "string",
    size: "number",
    sha1: "string",
    path: "string",
    mtime_ms: "number",
  },
  put_info: { info_hash: "string", length: "number", offset: "number", data: "string" },
  get_info: { group: "string", info_hash: "string", offset: "number" },
  list_files: { group: "string" },
  check_member: { group: "string" },
  locate_file: { group: "string", name: "string" },
  find_peers: { group: "string", info_hash: "string" },
  announce: { group: "string", info_hash: "string", state: "string" },
  stop_share: { group: "string", name: "string" },
  my_shares: {},
  restore_shares: { shares: "restores" },
};
const OPTIONAL_FIELDS: Partial<Record<RequestType, Record<string, Field>>> = {
  hello: { peer: "peer", peer_cert: "cert", pushes: "kinds" },
  my_shares: { after_group: "string", after_name: "string" },
  list_groups: { after: "string", limit: "number" },
  list_files: { after: "string", limit: "number" },
  stop_share: { keep_if_held: "boolean" },
  share_file: { info: "string", info_hash: "string" },
};

/**
 * Each request type's fields as lists, made once: `parseRequest` walks them for every frame
 * the tracker reads, where listing the tables' entries anew made two arrays a request.
 */
const FIELD_LISTS = Object.fromEntries(
  Object.entries(REQUEST_FIELDS).map(([type, required]) => [type, {
    required: Object.entries(required),
    optional: Object.entries(OPTIONAL_FIELDS[type as RequestType] ?? {}),
  }]),
) as { [T in RequestType]: { required: [string, Field][]; optional: [string, Field][] } };

function isPeerAddress(value: unknown): value is PeerAddress {
  if (typeof value !== "object" || value === null) return false;
  const { host, port } = value as Record<string, unknown>;
  return typeof host === "string" && host.length > 0 && host.length <= 255 &&
    Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536;
}

/** A list of push kinds a client understands: a few short words. */
function isKindList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= 16 &&
    value.every((kind) => typeof kind === "string" && kind.length > 0 && kind.length <= 32);
}

/**
 * A list of 1 to `MAX_SHARES_PER_RESTORE` shares, each with exactly its fields' types (their
 * values are checked one by one by the tracker, which refuses a bad one alone).
 */
function isRestoreList(value: unknown): value is ShareRestore[] {
  return Array.isArray(value) && value.length > 0 && value.length <= MAX_SHARES_PER_RESTORE &&
    value.every((share) => {
      if (typeof share !== "object" || share === null) return false;
      const { group, name, info_hash, path, mtime_ms } = share as Record<string, unknown>;
      return typeof group === "string" && typeof name === "string" &&
        typeof info_hash === "string" && typeof path === "string" &&
        typeof mtime_ms === "number" && Number.isFinite(mtime_ms);
    });
}

function hasType(value: unknown, field: Field): boolean {
  if (field === "peer") return isPeerAddress(value);
  if (field === "restores") return isRestoreList(value);
  if (field === "kinds") return isKindList(value);
  if (field === "cert") {
    return typeof value === "string" && value.length <= MAX_CERT_PEM_LENGTH &&
      value.includes("-----BEGIN CERTIFICATE-----");
  }
  if (field === "number") return typeof value === "number" && Number.isFinite(value);
  if (field === "boolean") return typeof value === "boolean";
  return typeof value === "string";
}

/** The request id of a frame, if it carries a usable one (so even a bad request can be answered). */
export function frameId(frame: Record<string, unknown>): number | undefined {
  const id = frame.id;
  return Number.isSafeInteger(id) && (id as number) >= 0 ? id as number : undefined;
}

function restoreOf(share: ShareRestore): ShareRestore {
  const { group, name, info_hash, path, mtime_ms } = share;
  return { group, name, info_hash, path, mtime_ms };
}

/**
 * Checks an untrusted frame against the request table and returns it typed.
 * Throws `ProtocolError` naming the first thing that is wrong.
 */
export function parseRequest(frame: Record<string, unknown>): RequestFrame {
  const id = frameId(frame);
  if (id === undefined) throw new ProtocolError("request has no valid id");
  const type = frame.type;
  if (typeof type !== "string" || !Object.hasOwn(REQUEST_FIELDS, type)) {
    throw new ProtocolError(
      `unknown request type ${typeof type === "string" ? quoted(type) : typeof type}`,
    );
  }
  const { required, optional } = FIELD_LISTS[type as RequestType];
  const request: Record<string, unknown> = { id, type };
  for (const [name, field] of required) {
    if (!hasType(frame[name], field)) {
      throw new ProtocolError(`request "${type}" needs a ${field} field "${name}"`);
    }
    // a list's items are copied field by field: nothing else of the frame travels inward
    request[name] = field === "restores"
      ? (frame[name] as ShareRestore[]).map(restoreOf)
      : frame[name];
  }
  for (const [name, field] of optional) {
    if (frame[name] === undefined) continue;
    if (!hasType(frame[name], field)) {
      throw new ProtocolError(`request "${type}" has a malformed field "${name}"`);
    }
    request[name] = frame[name];
  }
  return request as RequestFrame;
}

/**
 * A frame the tracker sends on its own (no `id`, never a reply):
 *
 * - `revoke`: `user` is no longer a member of `group` since `at` (ms, tracker clock), because
 *   they left or the group was deleted. A serving peer stops serving that user's connections
 *   in that group and refuses their tickets issued at or before `at`.
 * - `address_check`: whether the tracker verified that `host:port`, the serving address this
 *   client gave in its hello, leads to this client (with TLS: that the certificate presented
 *   there is the one registered in the hello). Only a verified address is handed to other
 *   peers; `reason` says why not. Sent only to clients that listed it in hello's `pushes`,
 *   once per link after login, and again when another client of the user takes the address.
 * - the notices (`NoticePush`): something happened that the user may want to act on. Sent
 *   only to clients that listed the kind in hello's `pushes`, and bounded per connection:
 *   past a few in a short spell, the tracker counts them and sends one `more_notices` per
 *   kind and group instead.
 *
 * @example
 * ```ts
 * parsePush({ push: "revoke", user: "bob", group: "films", at: 1_700_000_000_000 });
 * parsePush({ push: "join_requested", group: "films", user: "alice" });
 * ```
 */
export type Push = RevokePush | AddressCheckPush | NoticePush;

/** A user left a group (see `Push`). */
export type RevokePush = { push: "revoke"; user: string; group: string; at: number };

/** The outcome of the tracker's check of this client's serving address (see `Push`). */
export type AddressCheckPush = {
  push: "address_check";
  host: string;
  port: number;
  verified: boolean;
  /** Why it is not verified; absent when it is. */
  reason?: string;
};

/**
 * What the tracker tells a user without their asking, once per event and online connection:
 *
 * - `join_requested`: `user` asked to join `group`; sent to the group's owner.
 * - `join_accepted` / `join_rejected`: the owner answered this user's request to join `group`.
 * - `file_shared`: `user` shared a new file `name` of `size` bytes in `group`; sent to the
 *   group's other members.
 * - `more_notices`: `count` notices of kind `notice` were held back (too many in a short
 *   spell); `group` is absent when they came from several groups.
 */
export type NoticePush =
  | { push: "join_requested"; group: string; user: string }
  | { push: "join_accepted"; group: string }
  | { push: "join_rejected"; group: string }
  | { push: "file_shared"; group: string; name: string; size: number; user: string }
  | MoreNoticesPush;

/** Notices held back, counted (see `NoticePush`). */
export type MoreNoticesPush = {
  push: "more_notices";
  notice: NoticeKind;
  count: number;
  group?: string;
};

/** The kinds of single notices (what `more_notices` may count). */
export type NoticeKind = Exclude<NoticePush["push"], "more_notices">;

/** Every kind of single notice. */
export const NOTICE_KINDS: readonly NoticeKind[] = [
  "join_requested",
  "join_accepted",
  "join_rejected",
  "file_shared",
];

/** The `push` kinds this version knows. */
export type PushKind = Push["push"];

/** Push kinds a client must ask for in its hello (`pushes`); `revoke` goes to every client. */
export const OPTIONAL_PUSHES: readonly PushKind[] = [
  "address_check",
  ...NOTICE_KINDS,
  "more_notices",
];

/** A check of one field of a push: true when the value is acceptable. */
type PushFieldCheck = { valid: (value: unknown) => boolean; what: string; optional?: boolean };

const anId: PushFieldCheck = {
  valid: (value) => typeof value === "string" && isValidId(value),
  what: "a valid id",
};
const aFileName: PushFieldCheck = {
  valid: (value) => typeof value === "string" && fileNameProblem(value) === undefined,
  what: "a valid file name",
};
const aSize: PushFieldCheck = {
  valid: (value) => Number.isSafeInteger(value) && (value as number) >= 0,
  what: "a whole number of bytes",
};

/** The fields of each notice push, checked alike (they carry nothing but ids, names, counts). */
const NOTICE_FIELDS: { [K in NoticePush["push"]]: Record<string, PushFieldCheck> } = {
  join_requested: { group: anId, user: anId },
  join_accepted: { group: anId },
  join_rejected: { group: anId },
  file_shared: { group: anId, name: aFileName, size: aSize, user: anId },
  more_notices: {
    notice: {
      valid: (value) => (NOTICE_KINDS as readonly unknown[]).includes(value),
      what: "a notice kind",
    },
    count: {
      valid: (value) => Number.isSafeInteger(value) && (value as number) >= 1,
      what: "a whole count from 1",
    },
    group: { ...anId, optional: true },
  },
};

const PUSH_KEYS: { [K in PushKind]: readonly string[] } = {
  revoke: ["push", "user", "group", "at"],
  address_check: ["push", "host", "port", "verified", "reason"],
  join_requested: ["push", ...Object.keys(NOTICE_FIELDS.join_requested)],
  join_accepted: ["push", ...Object.keys(NOTICE_FIELDS.join_accepted)],
  join_rejected: ["push", ...Object.keys(NOTICE_FIELDS.join_rejected)],
  file_shared: ["push", ...Object.keys(NOTICE_FIELDS.file_shared)],
  more_notices: ["push", ...Object.keys(NOTICE_FIELDS.more_notices)],
};

/** Longest reason an `address_check` push may carry. */
const MAX_PUSH_REASON_LENGTH = 1000;

/** True when a frame is a push rather than a reply: it has a `push` key and no `id`. */
export function isPushFrame(frame: Record<string, unknown>): boolean {
  return Object.hasOwn(frame, "push") && !Object.hasOwn(frame, "id");
}

/**
 * Checks an untrusted push frame strictly: a known kind, exactly its fields, valid ids and
 * names, whole non-negative numbers. Throws `ProtocolError` naming the first thing that is
 * wrong.
 */
export function parsePush(frame: Record<string, unknown>): Push {
  if (Object.hasOwn(frame, "id")) throw new ProtocolError("a push has no id");
  const kind = frame.push;
  if (typeof kind !== "string" || !Object.hasOwn(PUSH_KEYS, kind)) {
    throw new ProtocolError(
      `unknown push ${typeof kind === "string" ? quoted(kind) : typeof kind}`,
    );
  }
  const keys = PUSH_KEYS[kind as PushKind];
  for (const key of Object.keys(frame)) {
    if (!keys.includes(key)) {
      throw new ProtocolError(`push "${kind}" has an unknown field ${quoted(key)}`);
    }
  }
  if (kind === "address_check") return parseAddressCheck(frame);
  if (Object.hasOwn(NOTICE_FIELDS, kind)) return parseNotice(kind as NoticePush["push"], frame);
  const { user, group, at } = frame;
  if (typeof user !== "string" || !isValidId(user)) {
    throw new ProtocolError(`push "${kind}" needs a valid user id`);
  }
  if (typeof group !== "string" || !isValidId(group)) {
    throw new ProtocolError(`push "${kind}" needs a valid group id`);
  }
  if (!Number.isSafeInteger(at) || (at as number) < 0) {
    throw new ProtocolError(`push "${kind}" needs a time "at" in whole ms`);
  }
  return { push: "revoke", user, group, at: at as number };
}

function parseNotice(kind: NoticePush["push"], frame: Record<string, unknown>): NoticePush {
  const notice: Record<string, unknown> = { push: kind };
  for (const [name, check] of Object.entries(NOTICE_FIELDS[kind])) {
    const value = frame[name];
    if (value === undefined && check.optional) continue;
    if (!check.valid(value)) {
      throw new ProtocolError(`push "${kind}" needs ${check.what} in "${name}"`);
    }
    notice[name] = value;
  }
  return notice as NoticePush;
}

function parseAddressCheck(frame: Record<string, unknown>): AddressCheckPush {
  const { host, port, verified, reason } = frame;
  if (!isPeerAddress({ host, port })) {
    throw new ProtocolError(`push "address_check" needs a host and a port`);
  }
  if (typeof verified !== "boolean") {
    throw new ProtocolError(`push "address_check" needs "verified", true or false`);
  }
  if (
    reason !== undefined && (typeof reason !== "string" || reason.length > MAX_PUSH_REASON_LENGTH)
  ) {
    throw new ProtocolError(`push "address_check" has a malformed "reason"`);
  }
  return {
    push: "address_check",
    host: host as string,
    port: port as number,
    verified,
    ...reason === undefined ? {} : { reason },
  };
}
