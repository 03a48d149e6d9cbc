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
import { ProtocolError } from "../../lib/errors.ts";
import { FrameDecoder } from "../../lib/frame.ts";
import { encodeFrame } from "../../lib/frame.ts";
import {
  isPushFrame,
  MAX_CERT_PEM_LENGTH,
  parsePush,
  parseRequest,
  type RequestType,
} from "../../lib/protocol.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { anyBytes, anyText, mutatedBytes, type NamedProperty, outcomeOf } from "./inputs.ts";

type FieldKind = "string" | "number" | "peer" | "cert";

/** Each request's fields as the `Request` type declares them. */
const REQUEST_SPEC = {
  hello: { required: { version: "number" }, optional: { peer: "peer", peer_cert: "cert" } },
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
  list_groups: { required: {} },
  share_file: {
    required: {
      group: "string",
      name: "string",
      size: "number",
      sha1: "string",
      info: "string",
      path: "string",
      mtime_ms: "number",
    },
  },
  list_files: { required: { group: "string" } },
  locate_file: { required: { group: "string", name: "string" } },
  find_peers: { required: { group: "string", info_hash: "string" } },
  announce: { required: { group: "string", info_hash: "string", state: "string" } },
  stop_share: { required: { group: "string", name: "string" } },
  my_shares: { required: {}, optional: { after_group: "string", after_name: "string" } },
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

const validValue: Record<FieldKind, fc.Arbitrary<unknown>> = {
  string: fc.oneof(anyText, fc.constant("")),
  number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer()),
  peer: fc.record({
    host: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 255 }),
    port: fc.integer({ min: 1, max: 65535 }),
  }),
  cert: fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }))
    .map(([before, after]) => `${before}${CERT_MARKER}${after}`),
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
};

/** Where each kind of field is tried: a request that has one, and its other fields. */
const FIELD_HOME: Record<FieldKind, { type: RequestType; name: string; others: object }> = {
  string: { type: "login", name: "user", others: { password: "p" } },
  number: { type: "hello", name: "version", others: {} },
  peer: { type: "hello", name: "peer", others: { version: 2 } },
  cert: { type: "hello", name: "peer_cert", others: { version: 2 } },
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

/** A push as the tracker sends it. */
const validPush = fc.record({
  push: fc.constant("revoke"),
  user: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
  group: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
  at: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(0)),
});

const invalidId = fc.oneof(
  fc.constantFrom<unknown>("", "a b", "x".repeat(65), "é", "a/b", null, 1, [], undefined),
  fc.string().filter((text) => !/^[A-Za-z0-9_.-]{1,64}$/.test(text)),
);

type PushDamage =
  | { kind: "user" | "group"; value: unknown }
  | { kind: "at"; value: unknown }
  | { kind: "push"; value: unknown }
  | { kind: "extra"; key: string; value: unknown }
  | { kind: "drop"; key: "user" | "group" | "at" };

const pushDamage: fc.Arbitrary<PushDamage> = fc.oneof(
  fc.record({ kind: fc.constantFrom("user" as const, "group" as const), value: invalidId }),
  fc.record({
    kind: fc.constant("at" as const),
    value: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, NaN, Infinity, "1", null, undefined),
  }),
  fc.record({
    kind: fc.constant("push" as const),
    value: fc.constantFrom<unknown>("revoked", "", "__proto__", "toString", null, 1),
  }),
  fc.record({
    kind: fc.constant("extra" as const),
    key: fc.oneof(
      fc.constant("id"),
      fc.string().filter((key) => !["push", "user", "group", "at"].includes(key)),
    ),
    value: fc.jsonValue({ maxDepth: 1 }),
  }),
  fc.record({
    kind: fc.constant("drop" as const),
    key: fc.constantFrom("user" as const, "group" as const, "at" as const),
  }),
);

/** Objects shaped like the link's frames: known keys, values of any type. */
const anyFrameObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof(
    fc.constantFrom("id", "type", "push", "user", "group", "at", "version", "peer", "peer_cert"),
    fc.constantFrom("password", "token", "scope", "size", "sha1", "info", "after_group"),
    fc.string({ maxLength: 8 }),
  ),
  fc.oneof(
    fc.constantFrom(...REQUEST_TYPES, "revoke"),
    fc.nat(),
    fc.jsonValue({ maxDepth: 2 }),
    validValue.peer,
  ),
  { maxKeys: 8 },
);

function pick<T>(items: T[], at: number): T | undefined {
  return items.length === 0 ? undefined : items[at % items.length];
}

/** Properties of lib/protocol.ts. */
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
        fc.constantFrom<FieldKind>("string", "number", "peer", "cert"),
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
          const accepted = valid || (value === undefined && kind !== "number");
          assert.equal(outcome.ok, accepted, `${kind} ${JSON.stringify(value)}`);
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
      fc.property(
        validPush,
        fc.option(pushDamage, { nil: undefined }),
        anyFrameObject,
        (push, damage, other) => {
          const frame: Record<string, unknown> = { ...push };
          if (damage?.kind === "extra") frame[damage.key] = damage.value;
          else if (damage?.kind === "drop") delete frame[damage.key];
          else if (damage) frame[damage.kind] = damage.value;
          const outcome = outcomeOf(() => parsePush(frame), [ProtocolError]);
          if (damage) assert.ok(!outcome.ok, `accepted ${JSON.stringify(damage)}`);
          else {
            assert.deepEqual(outcome, { ok: true, value: { ...push } });
            assert.ok(isPushFrame(frame));
          }
          const any = outcomeOf(() => parsePush(other), [ProtocolError]);
          isPushFrame(other);
          if (any.ok) {
            assert.deepEqual(Object.keys(any.value).sort(), ["at", "group", "push", "user"]);
            assert.ok(
              /^[A-Za-z0-9_.-]{1,64}$/.test(any.value.user + "") &&
                Number.isSafeInteger(any.value.at),
            );
          }
        },
      ),
  },
  {
    name: "protocol.frames_to_requests",
    claim: "any bytes on the tracker link end as requests, pushes or ProtocolError",
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
              outcomeOf(() => parseRequest(frame!), [ProtocolError]);
              if (isPushFrame(frame)) outcomeOf(() => parsePush(frame!), [ProtocolError]);
            }
          }, [ProtocolError]);
        },
      ),
  },
];
