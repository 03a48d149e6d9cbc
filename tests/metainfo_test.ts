import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type BValue, decode, encode } from "../lib/bencode.ts";
import { ProtocolError } from "../lib/errors.ts";
import {
  encodeInfo,
  infoHashHex,
  parseInfo,
  pieceHash,
  type TorrentInfo,
} from "../lib/metainfo.ts";
import { PIECE_LENGTH } from "../lib/pieces.ts";

/** The sample file: byte i is (7i + 3) mod 256, 1,100,000 bytes (three pieces). */
function sample(): Uint8Array {
  return Uint8Array.from({ length: 1_100_000 }, (_, i) => (i * 7 + 3) & 0xff);
}

function sampleInfo(): TorrentInfo {
  const data = sample();
  const hashes: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += PIECE_LENGTH) {
    hashes.push(createHash("sha1").update(data.subarray(at, at + PIECE_LENGTH)).digest());
  }
  const pieceHashes = new Uint8Array(hashes.length * 20);
  hashes.forEach((hash, i) => pieceHashes.set(hash, i * 20));
  return { name: "sample.bin", length: data.length, pieceHashes };
}

Deno.test("info_hash matches an independent implementation", async () => {
  // Computed with Python 3 (hashlib), not with this code:
  //   def benc(v): ints -> b"i%de", bytes -> b"%d:" + v, dicts -> b"d" + sorted items + b"e"
  //   data = bytes(((i*7+3) & 0xff) for i in range(1_100_000)); P = 524288
  //   pieces = b"".join(hashlib.sha1(data[i:i+P]).digest() for i in range(0, len(data), P))
  //   info = {"length": len(data), "name": "sample.bin", "piece length": P,
  //           "pieces": pieces, "private": 1}
  //   hashlib.sha1(benc(info)).hexdigest()
  assert.equal(
    await infoHashHex(encodeInfo(sampleInfo())),
    "7f5a39b162a37c4b935ded28852af63385b7eef8",
  );
});

Deno.test("parseInfo reads back what encodeInfo wrote", () => {
  const info = sampleInfo();
  const parsed = parseInfo(encodeInfo(info));
  assert.deepEqual(parsed, info);
  assert.deepEqual(pieceHash(parsed, 2), info.pieceHashes.subarray(40, 60));
  assert.deepEqual(
    parseInfo(encodeInfo({ name: "empty", length: 0, pieceHashes: new Uint8Array() })),
    {
      name: "empty",
      length: 0,
      pieceHashes: new Uint8Array(),
    },
  );
});

Deno.test("parseInfo refuses what is not one of our single-file torrents", async (t) => {
  const good = decode(encodeInfo(sampleInfo())) as Map<string, BValue>;
  const variant = (change: (dict: Map<string, BValue>) => void) => {
    const dict = new Map(good);
    change(dict);
    return encode(dict);
  };
  const cases: [string, Uint8Array][] = [
    ["not a dictionary", encode([1, 2])],
    ["other piece length", variant((d) => d.set("piece length", 262144))],
    ["too few piece hashes", variant((d) => d.set("pieces", new Uint8Array(40)))],
    ["length not matching the pieces", variant((d) => d.set("length", 10))],
    ["negative length", variant((d) => d.set("length", -1))],
    ["multi-file torrent", variant((d) => d.set("files", []))],
    ["no name", variant((d) => d.delete("name"))],
    ["name with a slash", variant((d) => d.set("name", new TextEncoder().encode("a/b")))],
    ["name ..", variant((d) => d.set("name", new TextEncoder().encode("..")))],
    ["empty name", variant((d) => d.set("name", new Uint8Array()))],
    ["control characters", variant((d) => d.set("name", new TextEncoder().encode("a\nb")))],
    ["name not UTF-8", variant((d) => d.set("name", new Uint8Array([0xff, 0xfe])))],
    ["private flag 2", variant((d) => d.set("private", 2))],
    ["garbage", new TextEncoder().encode("d4:name")],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, () => assert.throws(() => parseInfo(bytes), ProtocolError));
  }
});
