/**
 * Every property of the decoders and parsers that take untrusted input, by name: one list
 * that `deno test` (tests/fuzz_test.ts, a few hundred cases each, fixed seed) and
 * `deno task fuzz` (scripts/fuzz.ts, millions) both run. Each says that any input gives a
 * result or the module's documented error (never a TypeError, a RangeError or a stack
 * overflow), and where it applies: round trips, the same result for any chunking of a
 * stream, and limits refused before anything is allocated for them.
 *
 * @module
 */

import { argumentProperties } from "./properties/arguments.ts";
import { codecProperties } from "./properties/codecs.ts";
import { credentialProperties } from "./properties/credentials.ts";
import { infoPageProperties } from "./properties/info_pages.ts";
import type { NamedProperty } from "./properties/inputs.ts";
import { streamProperties } from "./properties/streams.ts";
import { textProperties } from "./properties/text.ts";
import { trackerMessageProperties } from "./properties/tracker_messages.ts";
import { trackerReplyProperties } from "./properties/tracker_replies.ts";
import { typingAidProperties } from "./properties/typing_aids.ts";

export type { NamedProperty } from "./properties/inputs.ts";

/** All properties, in the order they run. */
export const PROPERTIES: readonly NamedProperty[] = [
  ...codecProperties,
  ...infoPageProperties,
  ...streamProperties,
  ...trackerMessageProperties,
  ...trackerReplyProperties,
  ...credentialProperties,
  ...textProperties,
  ...argumentProperties,
  ...typingAidProperties,
];
