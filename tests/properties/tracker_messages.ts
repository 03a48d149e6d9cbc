/**
 * Properties of the tracker link's message checks (lib/protocol.ts): `parseRequest`, which
 * the tracker applies to every frame a client sends, and `isPushFrame`/`parsePush`, which a
 * client applies to what the tracker sends on its own. The request table here is written
 * from the `Request` type, so a request type added there without a line here does not
 * compile.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError, UserError } from "../../lib/errors.ts";
import { FrameDecoder } from "../../lib/frame.ts";
import { encodeFrame } from "../../lib/frame.ts";
import {
  fileNameProblem,
  isLoginDeadlineNotice,
  isPushFrame,
  MAX_CERT_PEM_LENGTH,
  MAX_SHARED_NAME_BYTES,
  MAX_SHARES_PER_RESTORE,
  NOTICE_KINDS,
  parsePush,
  parseRequest,
  PART_FILE_SUFFIX,
  type PushKind,
  type RequestType,
} from "../../lib/protocol.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { allPages, MAX_PAGES } from "../../peer/pages.ts";
import {
  anyBytes,
  anyText,
  asyncOutcomeOf,
  mutatedBytes,
  type NamedProperty,
  outcomeOf,
} from "./inputs.ts";

type FieldKind = "string" | "number" | "peer" | "cert" | "kinds" | "restores";

/** Each request's fields as the `Request` type declares them. */
const REQUEST_SPEC = {
  hello: {
    required: { version: "number" },
    optional: { peer: "peer", peer_cert: "cert", pushes: "kinds" },
  },
  ping: { required: {} },
  create_user: { required: { user: "string", password: "string" } },
  login: { required: { user: "string", password: "string" } },
  resume: { required: { token: "string" } },
  logout: { required: {} },
  list_sessions: { required: {} },
  end_sessions: { required: { scope: "string" } },
  create_group: { required: { group: "string" } },
  join_group: { required: { group: "string" } },
  leave_group: { required: { group: "string" } },
  list_requests: { required: { group: "string" } },
  accept_request: { required: { group: "string", user: "string" } },
  reject_request: { required: { group: "string", user: "string" } },
  list_groups: { required: {}, optional: { after: "string", limit: "number" } },
  share_file: {
    required: {
      group: "string",
      name: "string",
      size: "number",
      sha1: "string",
      path: "string",
      mtime_ms: "number",
    },
    optional: { info: "string", info_hash: "string" },
  },
  put_info: {
    required: { info_hash: "string", length: "number", offset: "number", data: "string" },
  },
  get_info: { required: { group: "string", info_hash: "string", offset: "number" } },
  list_files: { required: { group: "string" }, optional: { after: "string", limit: "number" } },
  check_member: { required: { group: "string" } },
  locate_file: { required: { group: "string", name: "string" } },
  find_peers: { required: { group: "string", info_hash: "string" } },
  announce: { required: { group: "string", info_hash: "string", state: "string" } },
  stop_share: { required: { group: "string", name: "string" } },
  my_shares: { required: {}, optional: { after_group: "string", after_name: "string" } },
  restore_shares: { required: { shares: "restores" } },
} satisfies Record<
  RequestType,
  { required: Record<string, FieldKind>; optional?: Record<string, FieldKind> }
>;

const REQUEST_TYPES = Object.keys(REQUEST_SPEC) as RequestType[];

function fieldsOf(
  type: RequestType,
): { required: [string, FieldKind][]; optional: [string, FieldKind][] } {
  const spec: { required: Record<string, FieldKind>; optional?: Record<string, FieldKind> } =
    REQUEST_SPEC[type];
  return { required: Object.entries(spec.required), optional: Object.entries(spec.optional ?? {}) };
}

const CERT_MARKER = "-----BEGIN CERTIFICATE-----";

/** One share of a `restore_shares` list: its values are the tracker's to judge, not the parse's. */
const restoreItem = fc.record({
  group: fc.string({ maxLength: 10 }),
  name: fc.string({ maxLength: 10 }),
  info_hash: fc.string({ maxLength: 40 }),
  path: fc.string({ maxLength: 20 }),
  mtime_ms: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
}).map((item) => ({ ...item })); // a plain object, as JSON.parse makes them
const RESTORE_ITEM = { group: "g", name: "n", info_hash: "h", path: "/p", mtime_ms: 1 };

const validValue: Record<FieldKind, fc.Arbitrary<unknown>> = {
  string: fc.oneof(anyText, fc.constant("")),
  number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer()),
  peer: fc.record({
    host: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 255 }),
    port: fc.integer({ min: 1, max: 65535 }),
  }),
  cert: fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }))
    .map(([before, after]) => `${before}${CERT_MARKER}${after}`),
  kinds: fc.array(fc.string({ minLength: 1, maxLength: 32 }), { maxLength: 16 }),
  restores: fc.array(restoreItem, { minLength: 1, maxLength: 4 }),
};

const jsonNonString = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, [], {}, 0, -1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Values a field of each kind must refuse. */
const invalidValue: Record<FieldKind, fc.Arbitrary<unknown>> = {
  string: jsonNonString.filter((value) => typeof value !== "string"),
  number: fc.oneof(
    fc.constantFrom<unknown>(null, true, [], {}, "1", NaN, Infinity, -Infinity, undefined),
    fc.string(),
  ),
  peer: fc.oneof(
    fc.constantFrom<unknown>(null, "127.0.0.1:5000", [], 5000),
    fc.record({ host: fc.constant(""), port: fc.integer({ min: 1, max: 65535 }) }),
    fc.record({ host: fc.string({ minLength: 256, maxLength: 300 }), port: fc.constant(5000) }),
    fc.record({
      host: fc.constant("127.0.0.1"),
      port: fc.constantFrom<unknown>(0, -1, 65536, 1.5, "5000", null, NaN),
    }),
    fc.record({ port: fc.constant(5000) }),
    fc.record({ host: fc.constant(5), port: fc.constant(5000) }),
  ),
  cert: fc.oneof(
    jsonNonString,
    fc.string().filter((text) => !text.includes(CERT_MARKER)),
    fc.constant(CERT_MARKER + "x".repeat(MAX_CERT_PEM_LENGTH)),
  ),
  restores: fc.oneof(
    fc.constantFrom<unknown>(null, [], {}, "[]", 1),
    fc.array(restoreItem, { minLength: MAX_SHARES_PER_RESTORE + 1, maxLength: 210 }),
    fc.tuple(
      fc.array(restoreItem, { maxLength: 3 }),
      fc.constantFrom<string>("group", "name", "info_hash", "path", "mtime_ms"),
      fc.constantFrom<unknown>(undefined, null, 1, "1", [], {}, NaN, Infinity),
    ).filter(([, field, bad]) => !(field === "mtime_ms" && bad === 1))
      .filter(([, field, bad]) => !(field !== "mtime_ms" && bad === "1"))
      .map(([items, field, bad]) => [...items, { ...RESTORE_ITEM, [field]: bad }]),
  ),
  kinds: fc.oneof(
    fc.constantFrom<unknown>(null, "revoke", {}, 1),
    fc.array(fc.string({ maxLength: 40 }), { minLength: 17, maxLength: 20 }),
    fc.tuple(
      fc.array(fc.string({ minLength: 1, maxLength: 32 }), { maxLength: 15 }),
      fc.constantFrom<unknown>("", "k".repeat(33), 1, null, []),
    ).map(([kinds, bad]) => [...kinds, bad]),
  ),
};

/** Values at the edges of what each kind accepts. */
const edgeValue: Record<FieldKind, { valid: unknown[]; invalid: unknown[] }> = {
  string: { valid: ["", "x".repeat(10_000), "__proto__"], invalid: [null, 0, [], {}] },
  number: {
    valid: [0, -0, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE],
    invalid: [NaN, Infinity, -Infinity, "0", null],
  },
  peer: {
    valid: [{ host: "x".repeat(255), port: 65535 }, { host: "a", port: 1 }],
    invalid: [
      { host: "x".repeat(256), port: 5000 },
      { host: "a", port: 0 },
      { host: "a", port: 65536 },
      { host: "a", port: 1.5 },
      { host: "", port: 5000 },
    ],
  },
  cert: {
    valid: [CERT_MARKER, CERT_MARKER.padEnd(MAX_CERT_PEM_LENGTH, "x")],
    invalid: [CERT_MARKER.padEnd(MAX_CERT_PEM_LENGTH + 1, "x"), CERT_MARKER.slice(1), ""],
  },
  restores: {
    valid: [[RESTORE_ITEM], Array(MAX_SHARES_PER_RESTORE).fill(RESTORE_ITEM)],
    invalid: [[], Array(MAX_SHARES_PER_RESTORE + 1).fill(RESTORE_ITEM), [null], [[]]],
  },
  kinds: {
    valid: [[], ["address_check"], Array(16).fill("k"), ["k".repeat(32)]],
    invalid: [Array(17).fill("k"), [""], ["k".repeat(33)], [1], "address_check", {}, [null]],
  },
};

/** Where each kind of field is tried: a request that has one, and its other fields. */
const FIELD_HOME: Record<FieldKind, { type: RequestType; name: string; others: object }> = {
  string: { type: "login", name: "user", others: { password: "p" } },
  number: { type: "hello", name: "version", others: {} },
  peer: { type: "hello", name: "peer", others: { version: 2 } },
  cert: { type: "hello", name: "peer_cert", others: { version: 2 } },
  kinds: { type: "hello", name: "pushes", others: { version: 2 } },
  restores: { type: "restore_shares", name: "shares", others: {} },
};

/** A request as the table says, with its expected parse and junk keys beside it. */
const validRequest: fc.Arbitrary<
  { frame: Record<string, unknown>; parsed: Record<string, unknown> }
> = fc
  .constantFrom(...REQUEST_TYPES)
  .chain((type) => {
    const { required, optional } = fieldsOf(type);
    const known = new Set(["id", "type", ...required.map(([n]) => n), ...optional.map(([n]) => n)]);
    return fc.record({
      id: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
      type: fc.constant(type),
      required: fc.tuple(...required.map(([, kind]) => validValue[kind])),
      optional: fc.tuple(
        ...optional.map(([, kind]) => fc.option(validValue[kind], { nil: undefined })),
      ),
      junk: fc.dictionary(
        fc.string({ maxLength: 10 }).filter((key) => !known.has(key)),
        fc.jsonValue({ maxDepth: 2 }),
        { maxKeys: 3 },
      ),
    }).map(({ id, required: values, optional: maybe, junk }) => {
      const parsed: Record<string, unknown> = { id, type };
      required.forEach(([name], i) => parsed[name] = values[i]);
      optional.forEach(([name], i) => {
        if (maybe[i] !== undefined) parsed[name] = maybe[i];
      });
      return { frame: { ...junk, ...parsed }, parsed };
    });
  });

/** One change that makes a valid request invalid; `at` picks the field. */
type RequestDamage =
  | { kind: "drop_required"; at: number }
  | { kind: "bad_required" | "bad_optional"; at: number; values: Record<FieldKind, unknown> }
  | { kind: "bad_id"; id: unknown }
  | { kind: "bad_type"; type: unknown };

const requestDamage: fc.Arbitrary<RequestDamage> = fc.oneof(
  fc.record({ kind: fc.constant("drop_required" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constantFrom("bad_required" as const, "bad_optional" as const),
    at: fc.nat(),
    values: fc.record(invalidValue),
  }),
  fc.record({
    kind: fc.constant("bad_id" as const),
    id: fc.constantFrom<unknown>(-1, 1.5, "1", null, 2 ** 53, NaN, Infinity, undefined, [], {}),
  }),
  fc.record({
    kind: fc.constant("bad_type" as const),
    type: fc.oneof(
      fc.constantFrom<unknown>(
        "__proto__",
        "constructor",
        "toString",
        "hasOwnProperty",
        "",
        1,
        null,
      ),
      fc.string().filter((text) => !REQUEST_TYPES.includes(text as RequestType)),
    ),
  }),
);

const validId = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const invalidId = fc.oneof(
  fc.constantFrom<unknown>("", "a b", "x".repeat(65), "é", "a/b", null, 1, []),
  fc.string().filter((text) => !/^[A-Za-z0-9_.-]{1,64}$/.test(text)),
);

/** File names a `file_shared` notice may carry, and ones it must refuse. */
const validFileName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }).filter((name) => fileNameProblem(name) === undefined),
  fc.constantFrom("a", "movie.bin", "é.txt", "x".repeat(MAX_SHARED_NAME_BYTES)),
);
const invalidFileName = fc.oneof(
  fc.constantFrom<unknown>(
    "",
    ".",
    "..",
    "a/b",
    "a\\b",
    "a\nb",
    "\u001b[31mred",
    "gnp\u202e.exe",
    "x".repeat(MAX_SHARED_NAME_BYTES + 1),
    `.x${PART_FILE_SUFFIX}`,
    null,
    1,
    [],
  ),
  fc.string().filter((name) => fileNameProblem(name) !== undefined),
);
const validCount = (min: number) =>
  fc.oneof(fc.integer({ min, max: 1_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER));
const invalidCount = (min: number) =>
  fc.constantFrom<unknown>(min - 1, -1, 1.5, 2 ** 53, NaN, Infinity, "1", null, true);

/** One field of a push: values it takes, values it must refuse, whether it may be absent. */
interface PushField {
  valid: fc.Arbitrary<unknown>;
  invalid: fc.Arbitrary<unknown>;
  optional?: boolean;
}

/** Each push's fields as the `Push` type declares them. */
const PUSH_SPEC = {
  revoke: {
    user: { valid: validId, invalid: invalidId },
    group: { valid: validId, invalid: invalidId },
    at: {
      valid: fc.oneof(fc.nat(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER)),
      invalid: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, NaN, Infinity, "1", null),
    },
  },
  address_check: {
    host: {
      valid: fc.oneof(
        fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 40 }),
        fc.constant("h".repeat(255)),
      ),
      invalid: fc.constantFrom<unknown>("", "h".repeat(256), 1, null, ["a"]),
    },
    port: {
      valid: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(1, 65535)),
      invalid: fc.constantFrom<unknown>(0, -1, 65536, 1.5, "5000", null),
    },
    verified: { valid: fc.boolean(), invalid: fc.constantFrom<unknown>(0, 1, "true", null) },
    reason: {
      valid: fc.oneof(fc.string({ maxLength: 40 }), fc.constant("r".repeat(1000))),
      invalid: fc.constantFrom<unknown>(1, null, false, "r".repeat(1001)),
      optional: true,
    },
  },
  join_requested: {
    group: { valid: validId, invalid: invalidId },
    user: { valid: validId, invalid: invalidId },
  },
  join_accepted: { group: { valid: validId, invalid: invalidId } },
  join_rejected: { group: { valid: validId, invalid: invalidId } },
  file_shared: {
    group: { valid: validId, invalid: invalidId },
    name: { valid: validFileName, invalid: invalidFileName },
    size: { valid: validCount(0), invalid: invalidCount(0) },
    user: { valid: validId, invalid: invalidId },
  },
  more_notices: {
    notice: {
      valid: fc.constantFrom(...NOTICE_KINDS),
      invalid: fc.constantFrom<unknown>("more_notices", "revoke", "", "toString", null, 1),
    },
    count: { valid: validCount(1), invalid: invalidCount(1) },
    group: { valid: validId, invalid: invalidId, optional: true },
  },
} satisfies Record<PushKind, Record<string, PushField>>;

const PUSH_KINDS = Object.keys(PUSH_SPEC) as PushKind[];

function pushFields(kind: PushKind): [string, PushField][] {
  return Object.entries(PUSH_SPEC[kind] as Record<string, PushField>);
}

/** One change that makes a valid push invalid. */
type PushDamage =
  | { kind: "bad"; field: string; value: unknown }
  | { kind: "drop"; field: string }
  | { kind: "extra"; key: string; value: unknown }
  | { kind: "push"; value: unknown };

/** A push as the tracker sends it, and maybe one change that breaks it. */
const pushCase: fc.Arbitrary<{ push: Record<string, unknown>; damage?: PushDamage }> = fc
  .constantFrom(...PUSH_KINDS)
  .chain((kind) => {
    const fields = pushFields(kind);
    const required = fields.filter(([, field]) => !field.optional);
    const damage: fc.Arbitrary<PushDamage> = fc.oneof(
      ...fields.map(([name, field]) =>
        fc.record({
          kind: fc.constant("bad" as const),
          field: fc.constant(name),
          value: field.invalid,
        })
      ),
      fc.record({
        kind: fc.constant("drop" as const),
        field: fc.constantFrom(...required.map(([name]) => name)),
      }),
      fc.record({
        kind: fc.constant("extra" as const),
        key: fc.oneof(
          fc.constant("id"),
          fc.string().filter((key) => key !== "push" && !fields.some(([name]) => name === key)),
        ),
        value: fc.jsonValue({ maxDepth: 1 }),
      }),
      fc.record({
        kind: fc.constant("push" as const),
        value: fc.constantFrom<unknown>("revoked", "", "__proto__", "toString", null, 1),
      }),
    );
    return fc.record({
      push: fc.tuple(
        ...fields.map(([, field]) =>
          field.optional ? fc.option(field.valid, { nil: undefined }) : field.valid
        ),
      ).map((values) => {
        const push: Record<string, unknown> = { push: kind };
        fields.forEach(([name], i) => {
          if (values[i] !== undefined) push[name] = values[i];
        });
        return push;
      }),
      damage: fc.option(damage, { nil: undefined }),
    });
  });

/** Objects shaped like the link's frames: known keys, values of any type. */
const anyFrameObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof(
    fc.constantFrom("id", "type", "push", "user", "group", "at", "version", "peer", "peer_cert"),
    fc.constantFrom("password", "token", "scope", "size", "sha1", "info", "after_group"),
    fc.constantFrom("pushes", "after", "host", "port", "verified", "reason", "ok", "error"),
    fc.constantFrom("name", "notice", "count"),
    fc.string({ maxLength: 8 }),
  ),
  fc.oneof(
    fc.constantFrom(...REQUEST_TYPES, ...PUSH_KINDS, ...NOTICE_KINDS, "unauthenticated"),
    fc.nat(),
    fc.boolean(),
    fc.record({ code: fc.constantFrom("unauthenticated", "busy"), message: fc.string() }),
    fc.jsonValue({ maxDepth: 2 }),
    validValue.peer,
  ),
  { maxKeys: 8 },
);

function pick<T>(items: T[], at: number): T | undefined {
  return items.length === 0 ? undefined : items[at % items.length];
}

/** Keys of a paged listing (group or file names): short, so pages collide and repeat. */
const pageKey = fc.stringMatching(/^[a-c]{1,3}$/);

/** What allPages must make of these pages: the entries, or the refusal it must throw. */
function expectedListing(
  pages: string[][],
  endless: boolean,
): string[] | "out of order" | "too long" {
  const entries: string[] = [];
  for (const page of pages) {
    if (page.length === 0) return entries;
    for (const key of page) {
      if (entries.length > 0 && !(key > entries.at(-1)!)) return "out of order";
      entries.push(key);
    }
  }
  // after these pages the tracker sends an empty one, or (endless) ever later keys
  return endless ? "too long" : entries;
}

/** Properties of lib/protocol.ts and of the client's reading of paged replies. */
export const trackerMessageProperties: NamedProperty[] = [
  {
    name: "protocol.requests",
    claim: "parseRequest returns exactly a valid request's fields, and refuses any broken one",
    build: () =>
      fc.property(validRequest, fc.option(requestDamage, { nil: undefined }), (request, damage) => {
        const frame = { ...request.frame };
        const { required, optional } = fieldsOf(frame.type as RequestType);
        let broken = damage !== undefined;
        if (damage?.kind === "drop_required") {
          const field = pick(required, damage.at);
          if (field) delete frame[field[0]];
          else broken = false;
        } else if (damage?.kind === "bad_required" || damage?.kind === "bad_optional") {
          const field = pick(damage.kind === "bad_required" ? required : optional, damage.at);
          const value = field && damage.values[field[1]];
          // an optional field set to undefined is absent, which is fine
          if (!field || (value === undefined && damage.kind === "bad_optional")) broken = false;
          if (field) frame[field[0]] = value;
        } else if (damage?.kind === "bad_id") {
          frame.id = damage.id;
        } else if (damage?.kind === "bad_type") {
          frame.type = damage.type;
        }
        const outcome = outcomeOf(() => parseRequest(frame), [ProtocolError]);
        if (broken) assert.ok(!outcome.ok, `accepted ${JSON.stringify(damage)}`);
        else assert.deepEqual(outcome, { ok: true, value: request.parsed });
      }),
  },
  {
    name: "protocol.field_values",
    claim: "each kind of field accepts exactly its valid values, edges included",
    build: () =>
      fc.property(
        fc.constantFrom<FieldKind>("string", "number", "peer", "cert", "kinds", "restores"),
        fc.boolean(),
        fc.boolean(),
        fc.record(validValue),
        fc.record(invalidValue),
        fc.nat(),
        (kind, valid, edge, validValues, invalidValues, pickEdge) => {
          const edges = edgeValue[kind][valid ? "valid" : "invalid"];
          const value = edge
            ? edges[pickEdge % edges.length]
            : (valid ? validValues : invalidValues)[kind];
          const home = FIELD_HOME[kind];
          const frame = { id: 1, type: home.type, ...home.others, [home.name]: value };
          const outcome = outcomeOf(() => parseRequest(frame), [ProtocolError]);
          // an optional field left undefined is absent: accepted
          const accepted = valid ||
            (value === undefined && kind !== "number" && kind !== "restores");
          assert.equal(outcome.ok, accepted, `${kind} ${JSON.stringify(value)}`);
        },
      ),
  },
  {
    name: "protocol.restore_items",
    claim: "restore_shares keeps exactly the five fields of each share, whatever else one holds",
    build: () =>
      fc.property(
        fc.array(
          fc.tuple(
            restoreItem,
            fc.dictionary(
              fc.string({ maxLength: 8 }).filter((key) => !(key in RESTORE_ITEM)),
              fc.jsonValue({ maxDepth: 1 }),
              { maxKeys: 3 },
            ),
          ),
          { minLength: 1, maxLength: 5 },
        ),
        (items) => {
          const shares = items.map(([item, junk]) => ({ ...junk, ...item }));
          const parsed = parseRequest({ id: 1, type: "restore_shares", shares });
          assert.deepEqual(parsed, {
            id: 1,
            type: "restore_shares",
            shares: items.map(([item]) => item),
          });
        },
      ),
  },
  {
    name: "protocol.request_any",
    claim: "any object gives a request that parses to itself, or ProtocolError",
    build: () =>
      fc.property(anyFrameObject, (frame) => {
        const outcome = outcomeOf(() => parseRequest(frame), [ProtocolError]);
        if (!outcome.ok) return;
        const request = outcome.value as Record<string, unknown>;
        const { required, optional } = fieldsOf(request.type as RequestType);
        const allowed = new Set(["id", "type", ...[...required, ...optional].map(([n]) => n)]);
        for (const key of Object.keys(request)) assert.ok(allowed.has(key), `kept "${key}"`);
        assert.deepEqual(parseRequest(request), request);
      }),
  },
  {
    name: "protocol.pushes",
    claim: "parsePush returns a valid push as sent and refuses any broken one or other object",
    build: () =>
      fc.property(pushCase, anyFrameObject, ({ push, damage }, other) => {
        const frame: Record<string, unknown> = { ...push };
        if (damage?.kind === "bad") frame[damage.field] = damage.value;
        else if (damage?.kind === "drop") delete frame[damage.field];
        else if (damage?.kind === "extra") frame[damage.key] = damage.value;
        else if (damage?.kind === "push") frame.push = damage.value;
        const outcome = outcomeOf(() => parsePush(frame), [ProtocolError]);
        if (damage) assert.ok(!outcome.ok, `accepted ${JSON.stringify(damage)}`);
        else {
          assert.deepEqual(outcome, { ok: true, value: push });
          assert.ok(isPushFrame(frame));
        }
        // any other object: a push with exactly its kind's fields, or refused
        const any = outcomeOf(() => parsePush(other), [ProtocolError]);
        isPushFrame(other);
        if (any.ok) {
          const fields = pushFields(any.value.push).map(([name]) => name);
          for (const key of Object.keys(any.value)) {
            assert.ok(key === "push" || fields.includes(key), `kept "${key}"`);
          }
        }
      }),
  },
  {
    name: "pages.all_pages",
    claim: "a paged listing is read whole when its keys only grow and a page comes back " +
      `empty within ${MAX_PAGES} pages, else refused with UserError`,
    testRuns: 200,
    build: () =>
      fc.asyncProperty(
        fc.array(fc.array(pageKey, { maxLength: 4 }), { maxLength: 6 }),
        fc.boolean(),
        async (pages, endless) => {
          const asked: (string | undefined)[] = [];
          const fetch = (after: string | undefined) => {
            asked.push(after);
            const at = asked.length - 1;
            if (at < pages.length) return Promise.resolve(pages[at].map((key) => ({ key })));
            // "~" sorts after every generated key: a tracker paging on and on, in order
            const more = endless ? [{ key: `~${String(at).padStart(6, "0")}` }] : [];
            return Promise.resolve(more);
          };
          const outcome = await asyncOutcomeOf(
            () => allPages(fetch, (entry) => entry.key, "listing"),
            [UserError],
          );
          const expected = expectedListing(pages, endless);
          if (typeof expected === "string") {
            assert.ok(!outcome.ok, `read a listing that is ${expected}`);
            assert.match(outcome.error, expected === "too long" ? /pages/ : /out of order/);
          } else {
            assert.deepEqual(outcome, { ok: true, value: expected.map((key) => ({ key })) });
          }
          assert.ok(asked.length <= MAX_PAGES + 1, `asked for ${asked.length} pages`);
          // keyset paging: each request goes on after the last entry received
          let last: string | undefined;
          for (const [at, after] of asked.entries()) {
            assert.equal(after, last);
            last = at < pages.length
              ? (pages[at].at(-1) ?? last)
              : `~${String(at).padStart(6, "0")}`;
          }
        },
      ),
  },
  {
    name: "protocol.frames_to_requests",
    claim: "any bytes on the tracker link end as requests, pushes, notices or ProtocolError",
    build: () =>
      fc.property(
        fc.array(
          fc.oneof(
            anyBytes,
            mutatedBytes(validRequest.map(({ frame }) => encodeFrame(frame))),
            anyFrameObject.map((frame) => encodeFrame(frame)),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        (parts) => {
          const decoder = new FrameDecoder(16 * 1024);
          decoder.push(concatBytes(...parts));
          outcomeOf(() => {
            for (let frame = decoder.next(); frame; frame = decoder.next()) {
              // the tracker's view of it, then a client's
              outcomeOf(() => parseRequest(frame!), [ProtocolError]);
              if (isPushFrame(frame)) outcomeOf(() => parsePush(frame!), [ProtocolError]);
              isLoginDeadlineNotice(frame);
            }
          }, [ProtocolError]);
        },
      ),
  },
];
