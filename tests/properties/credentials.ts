/**
 * Properties of what proves who is who: download tickets (lib/ticket.ts), fingerprints and
 * PEM (lib/identity.ts), the certificate reader and IP literals (lib/x509.ts), and the
 * client's known_trackers file (peer/state_dir.ts). A mutated ticket never verifies; every
 * parser gives a value or its documented error.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { concatBytes } from "../../lib/bytes.ts";
import { ProtocolError, UsageError, UserError } from "../../lib/errors.ts";
import {
  derToPem,
  formatFingerprint,
  generateIdentity,
  parseFingerprint,
  pemToDer,
} from "../../lib/identity.ts";
import {
  CLOCK_SKEW_MS,
  generateTicketKeys,
  importPublicKey,
  signTicket,
  TICKET_LIFETIME_MS,
  type TicketClaims,
  TicketError,
  ticketLifetimeMs,
  verifyTicket,
} from "../../lib/ticket.ts";
import { certificatePublicKeyInfo, encodeLength, parseIpAddress } from "../../lib/x509.ts";
import {
  normalizeAddress,
  parseAuthorityTrackers,
  parseKnownTrackers,
  trackerAddress,
} from "../../peer/state_dir.ts";
import {
  anyBytes,
  anyText,
  asyncOutcomeOf,
  mutatedBytes,
  mutatedText,
  type NamedProperty,
  outcomeOf,
} from "./inputs.ts";

// Tickets

/** The verifier's clock in every ticket property: fixed, so a case replays the same. */
const NOW = 1_800_000_000_000;

const validId = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => b.toHex());

/** Claims a tracker issues: honoured at NOW. */
const validClaims: fc.Arbitrary<TicketClaims> = fc.record({
  user: validId,
  group: validId,
  infoHash: hex(20),
  expiresAt: fc.integer({ min: NOW - CLOCK_SKEW_MS, max: NOW + TICKET_LIFETIME_MS }),
  lifetime: fc.option(fc.integer({ min: 0, max: TICKET_LIFETIME_MS }), { nil: undefined }),
  holder: fc.option(hex(32), { nil: undefined }),
}).map(({ lifetime, holder, ...claims }) => ({
  ...claims,
  ...lifetime === undefined ? {} : { issuedAt: claims.expiresAt - lifetime },
  ...holder === undefined ? {} : { holder },
}));

/** Claims of any shape: the fields, with values of any JSON type, or not an object at all. */
const anyClaims: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.record({
    user: fc.oneof(validId, fc.jsonValue({ maxDepth: 1 })),
    group: fc.oneof(validId, fc.jsonValue({ maxDepth: 1 })),
    infoHash: fc.oneof(hex(20), fc.jsonValue({ maxDepth: 1 })),
    expiresAt: fc.oneof(
      fc.integer({ min: NOW - 2 * TICKET_LIFETIME_MS, max: NOW + 2 * TICKET_LIFETIME_MS }),
      fc.double(),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    issuedAt: fc.oneof(fc.integer({ min: NOW - TICKET_LIFETIME_MS, max: NOW }), fc.double()),
    holder: fc.oneof(hex(32), fc.jsonValue({ maxDepth: 1 })),
  }, { requiredKeys: [] }),
);

const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** What an edit of a ticket puts in: its own alphabet, the separators, padding, spaces. */
const ticketCharacters = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...BASE64URL_ALPHABET, ".", "=", " ", "\n", "+", "/") },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 3 }) },
);

const base64urlText = fc.string({ unit: fc.constantFrom(...BASE64URL_ALPHABET), maxLength: 120 });

/** Values at and around what each claim may hold (`"expiry+1"`: one ms after expiresAt). */
const SUSPECT_CLAIMS: Record<string, unknown[]> = {
  user: [1, null, [], ""],
  group: [1, null, {}, ""],
  infoHash: ["ff".repeat(20), 1, null],
  expiresAt: [
    NOW - CLOCK_SKEW_MS - 1,
    NOW - CLOCK_SKEW_MS,
    NOW + TICKET_LIFETIME_MS + CLOCK_SKEW_MS,
    NOW + TICKET_LIFETIME_MS + CLOCK_SKEW_MS + 1,
    NOW + 0.5,
    "1",
    null,
  ],
  issuedAt: ["expiry+1", "expiry", 0, -1, 1.5, "1", null, 2 ** 53],
  holder: [1, null, "", "ee".repeat(32)],
};

/** Valid claims with one claim changed to a suspect value or left out. */
const nearlyValidClaims: fc.Arbitrary<Record<string, unknown>> = fc.tuple(
  validClaims,
  fc.constantFrom(...Object.keys(SUSPECT_CLAIMS)).chain((key) =>
    fc.tuple(fc.constant(key), fc.constantFrom(...SUSPECT_CLAIMS[key], "(left out)"))
  ),
).map(([claims, [key, value]]) => {
  const changed: Record<string, unknown> = { ...claims };
  if (value === "(left out)") delete changed[key];
  else if (value === "expiry+1") changed[key] = claims.expiresAt + 1;
  else if (value === "expiry") changed[key] = claims.expiresAt;
  else changed[key] = value;
  return changed;
});

/** Whether verifyTicket must honour `claims` (as signed, after JSON), from its documentation. */
function isHonourable(claims: unknown, expected: { infoHash: string; holder?: string }): boolean {
  if (typeof claims !== "object" || claims === null) return false;
  const { user, group, infoHash, expiresAt, issuedAt, holder } = claims as Record<string, unknown>;
  if (typeof user !== "string" || typeof group !== "string") return false;
  if (typeof infoHash !== "string" || typeof expiresAt !== "number") return false;
  if (holder !== undefined && typeof holder !== "string") return false;
  if (
    issuedAt !== undefined && !(Number.isSafeInteger(issuedAt) && (issuedAt as number) <= expiresAt)
  ) {
    return false;
  }
  return infoHash === expected.infoHash &&
    expiresAt >= NOW - CLOCK_SKEW_MS &&
    expiresAt <= NOW + TICKET_LIFETIME_MS + CLOCK_SKEW_MS &&
    (expected.holder === undefined || holder === expected.holder);
}

// Fingerprints and PEM

/** A fingerprint as users paste it: any case, prefix or not, colons or not, blanks around. */
const spelledFingerprint = fc.record({
  fingerprint: hex(32),
  prefix: fc.constantFrom("", "SHA256:", "sha256:", "Sha256:"),
  colons: fc.boolean(),
  upper: fc.boolean(),
  blank: fc.constantFrom("", " ", "\t", "\n "),
}).map(({ fingerprint, prefix, colons, upper, blank }) => {
  const digits = upper ? fingerprint.toUpperCase() : fingerprint;
  const body = colons ? digits.match(/../g)!.join(":") : digits;
  return { fingerprint, text: `${blank}${prefix}${body}${blank}` };
});

const pemLabel = fc.constantFrom("CERTIFICATE", "PRIVATE KEY");
/** Text around a PEM block that holds no PEM armour itself. */
const pemSurroundings = fc.oneof(
  fc.constant(""),
  anyText.filter((text) => !text.includes("-----")),
);

// Certificates

/** How a DER element's length is written: right (mostly) or wrong in the ways a reader must survive. */
type LengthStyle =
  | "right"
  | "long"
  | "one_short"
  | "one_long"
  | "indefinite"
  | "five_octets"
  | "huge";

const lengthStyle = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<LengthStyle>("right", "long") },
  {
    weight: 1,
    arbitrary: fc.constantFrom<LengthStyle>(
      "one_short",
      "one_long",
      "indefinite",
      "five_octets",
      "huge",
    ),
  },
);

/** The element `tag` holding `content`, its length written in `style`. */
function tlv(tag: number, content: Uint8Array, style: LengthStyle): Uint8Array {
  const n = content.length;
  const octets = {
    right: encodeLength(n),
    long: Uint8Array.of(0x82, n >> 8, n & 0xff),
    one_short: encodeLength(Math.max(n - 1, 0)),
    one_long: encodeLength(n + 1),
    indefinite: Uint8Array.of(0x80),
    five_octets: Uint8Array.of(0x85, 0, 0, 0, 0, n & 0xff),
    huge: Uint8Array.of(0x84, 0xff, 0xff, 0xff, 0xff),
  }[style];
  return concatBytes(Uint8Array.of(tag), octets, content);
}

/** A DER element of any tag, nested up to 4 deep. */
const derElement: fc.Arbitrary<Uint8Array> = fc.letrec<{ element: Uint8Array }>((tie) => ({
  element: fc.tuple(
    fc.constantFrom(0x30, 0x30, 0x02, 0xa0, 0x31, 0x06, 0x03, 0x05, 0x04),
    fc.oneof(
      { maxDepth: 4 },
      fc.uint8Array({ maxLength: 12 }),
      fc.array(tie("element"), { maxLength: 5 }).map((parts) => concatBytes(...parts)),
    ),
    lengthStyle,
  ).map(([tag, content, style]) => tlv(tag, content, style)),
})).element;

/** An element of the given tag with any content and any length style. */
const elementOf = (tag: number) =>
  fc.tuple(fc.oneof(fc.uint8Array({ maxLength: 12 }), derElement), lengthStyle)
    .map(([content, style]) => tlv(tag, content, style));

/**
 * The shape of a certificate (SEQUENCE { SEQUENCE { [0]?, INTEGER, 4 SEQUENCEs, key info
 * SEQUENCE, more }, more }), every length right or wrong: reaches every check of the reader.
 */
const certificateShaped: fc.Arbitrary<Uint8Array> = fc.record({
  version: fc.option(elementOf(0xa0), { nil: undefined }),
  fields: fc.tuple(elementOf(0x02), ...Array.from({ length: 5 }, () => elementOf(0x30))),
  // now and then an element of the wrong kind stands in for one
  swap: fc.option(fc.tuple(fc.nat(5), derElement), { nil: undefined, freq: 4 }),
  more: fc.array(derElement, { maxLength: 2 }),
  outer: fc.array(derElement, { maxLength: 2 }),
  tbsStyle: lengthStyle,
  certificateStyle: lengthStyle,
}).map(({ version, fields, swap, more, outer, tbsStyle, certificateStyle }) => {
  const elements = [...fields];
  if (swap) elements[swap[0]] = swap[1];
  const tbsContent = concatBytes(version ?? new Uint8Array(0), ...elements, ...more);
  const content = concatBytes(tlv(0x30, tbsContent, tbsStyle), ...outer);
  return tlv(0x30, content, certificateStyle);
});

const CERTIFICATE_ERRORS =
  /^TypeError: (not a certificate|trailing bytes after certificate|certificate public key runs past)/;

/** One DER element read from the rules (tag, short or 1-4 octet long length), or undefined. */
function derElementAt(bytes: Uint8Array, at: number, limit: number) {
  if (at + 2 > limit) return undefined;
  const tag = bytes[at];
  const first = bytes[at + 1];
  let length = first;
  let start = at + 2;
  if (first >= 0x80) {
    const octets = first - 0x80;
    if (octets < 1 || octets > 4 || start + octets > limit) return undefined;
    length = 0;
    for (const octet of bytes.subarray(start, start + octets)) length = length * 256 + octet;
    start += octets;
  }
  return start + length <= limit ? { tag, at, start, end: start + length } : undefined;
}

/**
 * What certificatePublicKeyInfo must find, read independently: a SEQUENCE filling the input
 * whose first element, a SEQUENCE, holds an optional [0], an INTEGER, four SEQUENCEs, then
 * the key info SEQUENCE, all inside it.
 */
function expectedKeyInfo(bytes: Uint8Array): Uint8Array | undefined {
  const certificate = derElementAt(bytes, 0, bytes.length);
  if (certificate?.tag !== 0x30 || certificate.end !== bytes.length) return undefined;
  const tbs = derElementAt(bytes, certificate.start, certificate.end);
  if (tbs?.tag !== 0x30) return undefined;
  const tags = [0x02, 0x30, 0x30, 0x30, 0x30, 0x30];
  let element = derElementAt(bytes, tbs.start, tbs.end);
  if (element?.tag === 0xa0) element = derElementAt(bytes, element.end, tbs.end);
  for (const [i, tag] of tags.entries()) {
    if (element?.tag !== tag) return undefined;
    if (i === tags.length - 1) return bytes.slice(element.at, element.end);
    element = derElementAt(bytes, element.end, tbs.end);
  }
  return undefined;
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let at = 0; at + needle.length <= haystack.length; at++) {
    for (let i = 0; i < needle.length; i++) if (haystack[at + i] !== needle[i]) continue outer;
    return at;
  }
  return -1;
}

/** IPv6 text with every group written out. */
function fullIpv6(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return Array.from({ length: 8 }, (_, i) => view.getUint16(2 * i).toString(16)).join(":");
}

/** The WHATWG URL parser's canonical text of an IPv6 address (RFC 5952), without brackets. */
function canonicalIpv6(bytes: Uint8Array): string {
  return new URL(`http://[${fullIpv6(bytes)}]/`).hostname.slice(1, -1);
}

const ipv4Bytes = fc.uint8Array({ minLength: 4, maxLength: 4 });
const ipv6Bytes = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.array(fc.constantFrom(0, 0, 0, 1, 0xff), { minLength: 16, maxLength: 16 })
    .map((bytes) => Uint8Array.from(bytes)),
);

/** An IP address and a text that names it. */
const spelledIp: fc.Arbitrary<{ bytes: Uint8Array; text: string }> = fc.oneof(
  ipv4Bytes.map((bytes) => ({ bytes, text: bytes.join(".") })),
  fc.tuple(ipv6Bytes, fc.constantFrom("full", "canonical", "upper", "bracketed", "dotted"))
    .map(([bytes, form]) => {
      const canonical = canonicalIpv6(bytes);
      const text = {
        full: fullIpv6(bytes),
        canonical,
        upper: canonical.toUpperCase(),
        bracketed: `[${canonical}]`,
        dotted: `${fullIpv6(bytes).split(":").slice(0, 6).join(":")}:${
          bytes.subarray(12).join(".")
        }`,
      }[form];
      return { bytes, text };
    }),
);

/** IPv6-looking text: up to 9 groups (of up to 5 digits), "::" anywhere, maybe a dotted tail. */
const ipv6Like: fc.Arbitrary<string> = fc.record({
  groups: fc.array(
    fc.oneof(
      { weight: 15, arbitrary: fc.stringMatching(/^[0-9a-fA-F]{1,4}$/) },
      { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{5}$/) },
    ),
    { maxLength: 9 },
  ),
  gap: fc.option(fc.nat(), { nil: undefined }),
  dotted: fc.option(fc.array(fc.nat(300), { minLength: 3, maxLength: 5 }), { nil: undefined }),
}).map(({ groups, gap, dotted }) => {
  const parts = [...groups];
  if (dotted) parts.push(dotted.join("."));
  if (gap === undefined) return parts.join(":");
  const at = gap % (parts.length + 1);
  return `${parts.slice(0, at).join(":")}::${parts.slice(at).join(":")}`;
});

// known_trackers

// "xn--" starts punycode, which the URL parser checks: a name of its own, not generated here
const dnsLabel = fc.stringMatching(/^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$/)
  .filter((label) => !label.startsWith("xn--"));
const trackerHost = fc.oneof(
  ipv4Bytes.map((bytes) => bytes.join(".")),
  ipv6Bytes.map(canonicalIpv6),
  ipv6Bytes.map(fullIpv6),
  fc.array(dnsLabel, { minLength: 1, maxLength: 4 }).chain((labels) =>
    fc.boolean().map((upper) => {
      const name = labels.join(".");
      return upper ? name.toUpperCase() : name;
    })
  ),
  fc.constant("localhost"),
);

type KnownTrackersLine =
  | { kind: "entry"; text: string; address: string; fingerprint: string }
  /** Lines that must give no entry: comments, entries commented out or with a third field. */
  | { kind: "no_entry"; text: string }
  /** Anything: may or may not give an entry. */
  | { kind: "other"; text: string };

const knownTrackersEntry = fc.record({
  host: trackerHost,
  port: fc.integer({ min: 1, max: 65535 }),
  spelled: spelledFingerprint,
  blank: fc.constantFrom(" ", "\t", "  ", " \t"),
}).map(({ host, port, spelled, blank }) => {
  const address = trackerAddress(host, port);
  const fingerprint = spelled.fingerprint;
  return {
    kind: "entry" as const,
    text: `${blank}${address}${blank}${formatFingerprint(fingerprint)}${blank}`,
    address,
    fingerprint,
  };
});

const knownTrackersLine: fc.Arbitrary<KnownTrackersLine> = fc.oneof(
  { weight: 4, arbitrary: knownTrackersEntry },
  {
    weight: 2,
    arbitrary: fc.tuple(
      knownTrackersEntry,
      anyText.map((text) => text.replaceAll("\n", " ")),
      fc.constantFrom("comment", "commented", "third"),
    ).map(([entry, text, how]) => ({
      kind: "no_entry" as const,
      text: {
        comment: `#${text}`,
        commented: `#${entry.text.trim()}`,
        third: `${entry.text} x${text.replace(/\s/g, "")}`,
      }[how],
    })),
  },
  { weight: 1, arbitrary: anyText.map((text) => ({ kind: "other" as const, text })) },
  {
    weight: 2,
    arbitrary: mutatedText(
      fc.tuple(trackerHost, fc.nat(65535), hex(32)).map(([host, port, fp]) =>
        `${host}:${port} SHA256:${fp}`
      ),
    ).map((text) => ({ kind: "other" as const, text })),
  },
);

/**
 * What a parser of lines returned holds every entry `written`, in order, among any that
 * other lines made: `same` matches one found to one written.
 */
function assertWrittenInOrder<F, W>(
  found: readonly F[],
  written: readonly W[],
  same: (found: F, written: W) => boolean,
  name: (written: W) => string,
): void {
  let at = 0;
  for (const entry of written) {
    while (at < found.length && !same(found[at], entry)) at++;
    assert.ok(at < found.length, `${name(entry)} lost`);
    at++;
  }
}

/** A line of authority_trackers: an address as written (any blanks around it), or not one. */
const authorityTrackersLine = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      host: trackerHost,
      port: fc.integer({ min: 1, max: 65535 }),
      blank: fc.constantFrom("", " ", "\t", " \t"),
    }).map(({ host, port, blank }) => {
      const address = trackerAddress(host, port);
      return { kind: "entry" as const, text: `${blank}${address}${blank}`, address };
    }),
  },
  { weight: 1, arbitrary: anyText.map((text) => ({ kind: "other" as const, text })) },
  {
    weight: 2,
    arbitrary: mutatedText(
      fc.tuple(trackerHost, fc.nat(65535)).map(([host, port]) => `${host}:${port}`),
    ).map((text) => ({ kind: "other" as const, text })),
  },
);

/** Properties of lib/ticket.ts, lib/identity.ts, lib/x509.ts and peer/state_dir.ts. */
export const credentialProperties: NamedProperty[] = [
  {
    name: "ticket.mutated",
    claim: "a valid ticket changed anywhere never verifies; only TicketError is thrown",
    testRuns: 500,
    build: async () => {
      const keys = await generateTicketKeys();
      return fc.asyncProperty(
        validClaims,
        fc.array(
          fc.record({
            kind: fc.constantFrom("replace", "insert", "delete"),
            at: fc.nat(),
            text: fc.string({ unit: ticketCharacters, minLength: 1, maxLength: 3 }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        async (claims, edits) => {
          const ticket = await signTicket(claims, keys.privateKey);
          let text = ticket;
          for (const edit of edits) {
            const at = edit.at % (text.length + 1);
            const end = edit.kind === "insert" ? at : at + edit.text.length;
            text = text.slice(0, at) + (edit.kind === "delete" ? "" : edit.text) + text.slice(end);
          }
          fc.pre(text !== ticket);
          const expected = { infoHash: claims.infoHash, holder: claims.holder, now: NOW };
          const outcome = await asyncOutcomeOf(
            () => verifyTicket(text, keys.publicKey, expected),
            [TicketError],
          );
          assert.ok(!outcome.ok, `a changed ticket verified: ${JSON.stringify(text)}`);
          const lifetime = ticketLifetimeMs(text);
          assert.ok(lifetime === undefined || (Number.isSafeInteger(lifetime) && lifetime > 0));
        },
      );
    },
  },
  {
    name: "ticket.claims",
    claim: "signed claims of any shape verify only when well formed and in date, and as signed",
    testRuns: 500,
    build: async () => {
      const keys = await generateTicketKeys();
      return fc.asyncProperty(
        fc.oneof(validClaims, nearlyValidClaims, anyClaims),
        fc.constantFrom("signed", "none", "other"),
        async (claims, holderExpected) => {
          const ticket = await signTicket(claims as TicketClaims, keys.privateKey);
          const fields = (typeof claims === "object" && claims !== null ? claims : {}) as Record<
            string,
            unknown
          >;
          const expected = {
            infoHash: typeof fields.infoHash === "string" ? fields.infoHash : "00".repeat(20),
            holder: {
              signed: typeof fields.holder === "string" ? fields.holder : undefined,
              none: undefined,
              other: "dd".repeat(32),
            }[holderExpected],
            now: NOW,
          };
          const outcome = await asyncOutcomeOf(
            () => verifyTicket(ticket, keys.publicKey, expected),
            [TicketError],
          );
          const signed = JSON.parse(JSON.stringify(claims));
          if (isHonourable(signed, expected)) {
            assert.deepEqual(outcome, { ok: true, value: signed });
          } else assert.ok(!outcome.ok, `honoured ${JSON.stringify(signed)}`);
        },
      );
    },
  },
  {
    name: "ticket.any_text",
    claim: "no text verifies as a ticket without the key; keys and lifetimes never throw",
    testRuns: 500,
    build: async () => {
      const keys = await generateTicketKeys();
      return fc.asyncProperty(
        fc.oneof(
          anyText,
          fc.tuple(base64urlText, base64urlText).map(([a, b]) => `${a}.${b}`),
          fc.tuple(validClaims, base64urlText).map(([claims, signature]) =>
            `${
              new TextEncoder().encode(JSON.stringify(claims)).toBase64({ alphabet: "base64url" })
            }.${signature}`
          ),
          fc.integer({ min: 2040, max: 2100 }).map((length) => "A".repeat(length) + ".AA"),
        ),
        async (text) => {
          const outcome = await asyncOutcomeOf(
            () => verifyTicket(text, keys.publicKey, { infoHash: "00".repeat(20), now: NOW }),
            [TicketError],
          );
          assert.ok(!outcome.ok, "an unsigned ticket verified");
          // a long one is refused before any decoding or signature work
          if (text.length > 2048) assert.equal(outcome.error, "TicketError: ticket too long");
          const lifetime = ticketLifetimeMs(text);
          assert.ok(lifetime === undefined || (Number.isSafeInteger(lifetime) && lifetime > 0));
          await asyncOutcomeOf(() => importPublicKey(text), [ProtocolError]);
        },
      );
    },
  },
  {
    name: "identity.fingerprint",
    claim: "parseFingerprint reads every spelling users paste and refuses the rest with UsageError",
    build: () =>
      fc.property(
        fc.oneof(
          spelledFingerprint,
          mutatedText(spelledFingerprint.map(({ text }) => text)).map((text) => ({ text })),
          anyText.map((text) => ({ text })),
        ),
        (spelled: { text: string; fingerprint?: string }) => {
          const outcome = outcomeOf(() => parseFingerprint(spelled.text), [UsageError]);
          if (spelled.fingerprint !== undefined) {
            assert.deepEqual(outcome, { ok: true, value: spelled.fingerprint });
          }
          if (outcome.ok) {
            assert.match(outcome.value, /^[0-9a-f]{64}$/);
            assert.equal(formatFingerprint(outcome.value), `SHA256:${outcome.value}`);
          }
          outcomeOf(() => formatFingerprint(spelled.text), [TypeError]);
        },
      ),
  },
  {
    name: "identity.pem",
    claim: "pemToDer gives back the DER of a PEM block amid any text, else UserError",
    build: () =>
      fc.property(
        fc.oneof(
          fc.record({
            der: fc.uint8Array({ minLength: 1, maxLength: 300 }),
            label: pemLabel,
            before: pemSurroundings,
            after: pemSurroundings,
            // a second block after the first: the first is the one read
            second: fc.option(fc.uint8Array({ minLength: 1, maxLength: 40 }), { nil: undefined }),
          }).map(({ der, label, before, after, second }) => ({
            text: `${before}${derToPem(der, label)}${after}${
              second ? derToPem(second, label) : ""
            }`,
            label,
            der: der as Uint8Array | undefined,
          })),
          fc.tuple(
            mutatedText(
              fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 100 }), pemLabel)
                .map(([der, label]) => derToPem(der, label)),
            ),
            pemLabel,
          ).map(([text, label]) => ({ text, label, der: undefined })),
          fc.tuple(anyText, pemLabel).map(([text, label]) => ({ text, label, der: undefined })),
          fc.tuple(pemLabel, fc.constantFrom("", "\n", " \n\t", "=", "==", "A", "A===")).map((
            [label, body],
          ) => ({
            text: `-----BEGIN ${label}-----${body}-----END ${label}-----`,
            label,
            der: undefined,
          })),
        ),
        ({ text, label, der }) => {
          const outcome = outcomeOf(() => pemToDer(text, label), [UserError]);
          if (der) assert.deepEqual(outcome, { ok: true, value: der });
          if (outcome.ok) assert.ok(outcome.value.length > 0);
        },
      ),
  },
  {
    name: "x509.public_key_info",
    claim: "certificatePublicKeyInfo finds the key of a certificate, and refuses other bytes " +
      "with its TypeError",
    testRuns: 3000,
    build: async () => {
      const identity = await generateIdentity("swarmshare fuzz", ["127.0.0.1", "fuzz.test"]);
      const certificate = identity.certDer;
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", identity.keys.publicKey));
      return fc.property(
        fc.oneof(
          anyBytes,
          derElement,
          certificateShaped,
          mutatedBytes(fc.constant(certificate)),
          fc.constant(certificate),
          fc.uint8Array({ minLength: 1, maxLength: 4 }).map((tail) =>
            concatBytes(certificate, tail)
          ),
        ),
        (bytes) => {
          const outcome = outcomeOf(() => certificatePublicKeyInfo(bytes), [TypeError]);
          if (!outcome.ok) assert.match(outcome.error, CERTIFICATE_ERRORS);
          const expected = expectedKeyInfo(bytes);
          assert.deepEqual(outcome.ok ? outcome.value : undefined, expected);
          if (bytes.length === certificate.length && indexOfBytes(bytes, certificate) === 0) {
            assert.deepEqual(expected, spki);
          }
        },
      );
    },
  },
  {
    name: "x509.ip_address",
    claim: "parseIpAddress reads every IPv4/IPv6 spelling, and what it reads the URL parser " +
      "reads as the same address",
    testRuns: 2000,
    build: () =>
      fc.property(
        fc.oneof(
          spelledIp,
          mutatedText(
            spelledIp.map(({ text }) => text),
            fc.string({
              unit: fc.constantFrom(..."0123456789abcdefABCDEF:.[]% "),
              minLength: 1,
              maxLength: 2,
            }),
          ).map((text) => ({ text, bytes: undefined })),
          anyText.map((text) => ({ text, bytes: undefined })),
          ipv6Like.map((text) => ({ text, bytes: undefined })),
        ),
        ({ text, bytes }: { text: string; bytes?: Uint8Array }) => {
          const parsed = parseIpAddress(text);
          if (bytes) assert.deepEqual(parsed, bytes);
          if (!parsed) return;
          if (parsed.length === 4) {
            assert.equal(text, parsed.join("."));
            return;
          }
          assert.equal(parsed.length, 16);
          const inner = text.startsWith("[") ? text.slice(1, -1) : text;
          let byUrl: string | undefined;
          try {
            byUrl = new URL(`http://[${inner}]/`).hostname.slice(1, -1);
          } catch {
            byUrl = undefined;
          }
          assert.equal(byUrl, canonicalIpv6(parsed), `the URL parser reads ${text} otherwise`);
        },
      ),
  },
  {
    name: "state_dir.known_trackers",
    claim: "known_trackers lines parse to the entries written, skip the rest, never throw",
    build: () =>
      fc.property(
        fc.array(knownTrackersLine, { maxLength: 8 }),
        fc.constantFrom("\n", "\r\n"),
        anyText,
        (lines, newline, address) => {
          const entries = parseKnownTrackers(lines.map((line) => line.text).join(newline));
          for (const entry of entries) {
            assert.equal(normalizeAddress(entry.address), entry.address);
            assert.match(entry.fingerprint, /^[0-9a-f]{64}$/);
          }
          assertWrittenInOrder(
            entries,
            lines.flatMap((line) => line.kind === "entry" ? [line] : []),
            (entry, line) =>
              entry.address === line.address && entry.fingerprint === line.fingerprint,
            (line) => `entry ${line.address}`,
          );
          if (lines.every((line) => line.kind !== "other")) {
            assert.equal(entries.length, lines.filter((line) => line.kind === "entry").length);
          }
          const normalized = outcomeOf(() => normalizeAddress(address), [UserError]);
          if (normalized.ok) assert.equal(normalizeAddress(normalized.value), normalized.value);
        },
      ),
  },
  {
    name: "state_dir.authority_trackers",
    claim: "authority_trackers lines parse to the addresses written, skip the rest, never throw",
    build: () =>
      fc.property(
        fc.array(authorityTrackersLine, { maxLength: 8 }),
        fc.constantFrom("\n", "\r\n"),
        (lines, newline) => {
          const addresses = parseAuthorityTrackers(lines.map((line) => line.text).join(newline));
          for (const address of addresses) assert.equal(normalizeAddress(address), address);
          assertWrittenInOrder(
            addresses,
            lines.flatMap((line) => line.kind === "entry" ? [line] : []),
            (address, line) => address === line.address,
            (line) => `address ${line.address}`,
          );
          if (lines.every((line) => line.kind === "entry")) {
            assert.equal(addresses.length, lines.length);
          }
        },
      ),
  },
];
