/**
 * Properties of the client's check of a tracker's replies (lib/replies.ts): a reply of the
 * promised shape comes back as it was, whatever else it carries; any value put in place of
 * one of its fields is refused with `ProtocolError` naming that field; any JSON at all is a
 * result or a `ProtocolError`; and a refusal always becomes a known code and one bounded line.
 * The samples are typed by `ResponseData`, so a reply type added there without a sample here
 * does not compile.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError } from "../../lib/errors.ts";
import type { RequestType, ResponseData } from "../../lib/protocol.ts";
import { MAX_REPLY_TEXT, parseRefusal, parseReply } from "../../lib/replies.ts";
import { type NamedProperty, outcomeOf } from "./inputs.ts";

const SHA1 = "0123456789abcdef0123456789abcdef01234567";
const FINGERPRINT = "ab".repeat(32);
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEER = {
  host: "127.0.0.1",
  port: 5001,
  fingerprint: FINGERPRINT,
  cert: CERT,
  device: FINGERPRINT,
};
const FILE = {
  group: "films",
  name: "a.iso",
  size: 734_003_200,
  sha1: SHA1,
  info_hash: SHA1,
  info: "ZDY6bGVuZ3RoaTFlZQ==",
};

/** One well-formed reply of each type, as a tracker sends it. */
export const REPLY_SAMPLES: { [T in RequestType]: ResponseData[T] } = {
  hello: { version: 2, server: "swarmshare 0.1.0", idle_timeout_ms: 45_000 },
  ping: null,
  create_user: { user: "alice" },
  login: { user: "alice", token: "t".repeat(43), ticket_key: "k".repeat(43) },
  resume: { user: "alice", ticket_key: "k".repeat(43) },
  logout: null,
  list_sessions: [
    {
      id: "0a1b2c3d",
      created_at: 1,
      last_seen_at: 2,
      fingerprint: FINGERPRINT,
      current: true,
      online: true,
    },
    {
      id: "4e5f6a7b",
      created_at: 1,
      last_seen_at: 2,
      fingerprint: null,
      current: false,
      online: false,
    },
  ],
  end_sessions: { ended: 3 },
  create_group: { group: "films", owner: "alice" },
  join_group: { group: "films", status: "pending" },
  leave_group: { group: "films", owner: null, deleted: true },
  list_requests: [{ user: "bob" }],
  accept_request: { group: "films", user: "bob" },
  reject_request: { group: "films", user: "bob" },
  list_groups: [{ group: "films", owner: "alice", members: 3 }],
  share_file: { group: "films", name: "a.iso", size: 0, sha1: SHA1, info_hash: SHA1 },
  list_files: [{ name: "a.iso", size: 1, sha1: SHA1, seeders: 0 }],
  check_member: { group: "films", owner: "alice" },
  locate_file: { ...FILE, peers: [PEER, { host: "::1", port: 1 }], ticket: "a.b_c-d" },
  find_peers: { peers: [PEER], ticket: "a.b_c-d" },
  announce: { peers: [] },
  stop_share: { group: "films", name: "a.iso", file_removed: false, kept: true },
  put_info: { received: 524_288 },
  get_info: { data: "ZDY6bGVuZ3RoaTFlZQ==" },
  restore_shares: {
    refused: [
      { group: "films", name: "a.iso", code: "not_found", message: "you do not share it" },
      { group: "music", name: "b.ogg", code: "forbidden", message: "not a member" },
    ],
  },
  my_shares: [
    { ...FILE, path: "/home/alice/a.iso", mtime_ms: 1.5 },
    { ...FILE, info: undefined, info_length: 41_943_382, path: "/home/alice/b.iso", mtime_ms: 0 },
  ],
};

/** Replies whose data the client does not read: any value is taken (as null). */
const UNREAD = new Set<RequestType>(["ping", "logout"]);
const CHECKED_TYPES = (Object.keys(REPLY_SAMPLES) as RequestType[]).filter((type) =>
  !UNREAD.has(type)
);

/** Every field of a value (object keys and list items, at any depth), as paths. */
function leafPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => leafPaths(item, [...path, index]));
  }
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => [
      [...path, key],
      ...leafPaths(item, [...path, key]),
    ]);
  }
  return [];
}

function replaced(value: unknown, path: (string | number)[], by: unknown): unknown {
  if (path.length === 0) return by;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at = copy;
  for (const step of path.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
  at[path[path.length - 1]] = by;
  return copy;
}

function valueAt(value: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((at, step) => (at as Record<string | number, unknown>)[step], value);
}

/** A value of another kind than `current`: none of them is ever acceptable in its place. */
function wrongFor(current: unknown): fc.Arbitrary<unknown> {
  if (typeof current === "string") {
    return fc.oneof(fc.integer(), fc.constantFrom<unknown>(true, [], {}, ""));
  }
  if (typeof current === "number") {
    return fc.oneof(
      fc.string(),
      fc.constantFrom<unknown>(NaN, Infinity, -1, 0.5, true, [], {}, Number.MAX_SAFE_INTEGER + 2),
    );
  }
  if (typeof current === "boolean") return fc.constantFrom<unknown>("true", 0, 1, [], {});
  if (Array.isArray(current)) return fc.constantFrom<unknown>({}, "[]", 0, true);
  return fc.constantFrom<unknown>([], "{}", 0, true);
}

/** Values where a number of any size may stand: `mtime_ms` is any finite time. */
const ANY_NUMBER_FIELDS = new Set(["mtime_ms"]);

export const trackerReplyProperties: NamedProperty[] = [
  {
    name: "replies.valid",
    claim: "a reply of its type's shape, with any extra fields, is returned as it came",
    build: () =>
      fc.property(
        fc.constantFrom(...CHECKED_TYPES),
        fc.dictionary(
          fc.string({ maxLength: 8 }).filter((key) => key !== "__proto__"),
          fc.jsonValue({ maxDepth: 2 }),
          { maxKeys: 3 },
        ),
        (type, junk) => {
          const sample = REPLY_SAMPLES[type];
          const reply = Array.isArray(sample)
            ? sample.map((item) => ({ ...junk, ...item }))
            : sample === null
            ? null
            : { ...junk, ...sample };
          assert.equal(parseReply(type, reply), reply);
        },
      ),
  },
  {
    name: "replies.damaged",
    claim: "a reply with any one field of the wrong kind is refused, naming it",
    build: () => {
      const damage = fc.constantFrom(...CHECKED_TYPES).chain((type) =>
        fc.constantFrom(...leafPaths(REPLY_SAMPLES[type])).chain((path) =>
          fc.record({
            type: fc.constant(type),
            path: fc.constant(path),
            by: wrongFor(valueAt(REPLY_SAMPLES[type], path)),
          })
        )
      );
      return fc.property(damage, ({ type, path, by }) => {
        const last = path[path.length - 1];
        if (typeof by === "number" && ANY_NUMBER_FIELDS.has(String(last)) && isFinite(by)) return;
        const outcome = outcomeOf(
          () => parseReply(type, replaced(REPLY_SAMPLES[type], path, by)),
          [ProtocolError],
        );
        assert.equal(outcome.ok, false, `${type} ${JSON.stringify(path)} = ${String(by)}`);
        const field = path.findLast((step) => typeof step === "string");
        if (field !== undefined && !outcome.ok) {
          assert.ok(outcome.error.includes(`"${field}"`), outcome.error);
        }
      });
    },
  },
  {
    name: "replies.any",
    claim: "any JSON as any reply is a result or a ProtocolError, never another error",
    build: () =>
      fc.property(
        fc.constantFrom(...(Object.keys(REPLY_SAMPLES) as RequestType[])),
        fc.jsonValue({ maxDepth: 4 }),
        (type, data) => {
          outcomeOf(() => parseReply(type, data), [ProtocolError]);
        },
      ),
  },
  {
    name: "replies.refusal",
    claim: "a refusal becomes a known code and one line of bounded length, whatever it held",
    build: () =>
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record({
            code: fc.oneof(fc.string(), fc.constantFrom("busy", "not_found", "__proto__")),
            message: fc.oneof(fc.string({ maxLength: 3000 }), fc.jsonValue({ maxDepth: 1 })),
          }),
        ),
        (error) => {
          const { code, message } = parseRefusal(error);
          assert.match(
            code,
            /^(bad_request|unsupported_version|unauthenticated|forbidden|not_found|conflict|rate_limited|busy|internal)$/,
          );
          assert.ok(!/[\r\n]/.test(message), JSON.stringify(message));
          assert.ok(message.length > 0 && message.length <= MAX_REPLY_TEXT + 3);
        },
      ),
  },
];
