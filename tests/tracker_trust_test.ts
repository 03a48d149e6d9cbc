/**
 * peer/tracker_trust.ts with a real state directory: once a certificate authority vouched
 * for the tracker at an address, a certificate there that no authority vouches for is
 * refused rather than trusted on first use (a downgrade by whoever sits on the path), while
 * renewals vouched for by an authority and `--tracker-fingerprint` work as before.
 */

import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { IdentityError } from "../lib/transport.ts";
import { StateDir } from "../peer/state_dir.ts";
import { trackerVerifier } from "../peer/tracker_trust.ts";
import { TempDir } from "./harness.ts";

const FP_CA = "c".repeat(64);
const FP_RENEWED = "d".repeat(64);
const FP_SELF = "e".repeat(64);
const ADDRESS = "tracker.example:5000";
const byAuthority = { byAuthority: true };
const unvouched = { byAuthority: false };

/** A verifier on a fresh state directory, and the pins it announced. */
async function setUp(temp: TempDir, name: string, expected?: string) {
  const stateDir = await StateDir.open(temp.join(name));
  const trusted: { address: string; fingerprint: string }[] = [];
  const verify = trackerVerifier({
    addresses: [ADDRESS],
    stateDir,
    expected,
    onTrusted: ({ address, fingerprint }) => trusted.push({ address, fingerprint }),
  });
  return { stateDir, verify, trusted };
}

function identityError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof IdentityError, `${error}`);
    assert.match(error.message, pattern);
    return true;
  };
}

Deno.test("tracker trust: an address an authority vouched for is never trusted on first use", async (t) => {
  await using temp = await TempDir.create();

  await t.step("vouched for, then an unvouched certificate: refused, nothing pinned", async () => {
    const { stateDir, verify, trusted } = await setUp(temp, "downgrade");
    await verify(FP_CA, byAuthority, ADDRESS);
    await assert.rejects(
      verify(FP_SELF, unvouched, ADDRESS),
      identityError(
        new RegExp(
          `the tracker at ${ADDRESS} was vouched for by a certificate authority before, and ` +
            `this certificate \\(fingerprint SHA256:${FP_SELF}\\) is not: someone may be ` +
            `intercepting the connection\\. Nothing was sent to it\\..*delete the line ` +
            `${ADDRESS} from ${stateDir.path}/authority_trackers or start the client with ` +
            `--tracker-fingerprint`,
        ),
      ),
    );
    assert.deepEqual(trusted, [], "no first-use trust announced");
    assert.equal(await stateDir.knownTracker(ADDRESS), undefined, "nothing pinned");
    const pins = await Deno.readTextFile(`${stateDir.path}/known_trackers`).catch(() => "");
    assert.equal(pins, "");
    // and again, at the next attempt: still refused
    await assert.rejects(verify(FP_SELF, unvouched, ADDRESS), IdentityError);
  });

  await t.step("remembered across clients, in a private file of its own", async () => {
    const first = await setUp(temp, "restart");
    await first.verify(FP_CA, byAuthority, "Tracker.Example:5000");
    const file = `${first.stateDir.path}/authority_trackers`;
    assert.equal(await Deno.readTextFile(file), `${ADDRESS}\n`);
    if (Deno.build.os !== "windows") assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    await first.verify(FP_CA, byAuthority, ADDRESS); // listed already: not again
    assert.equal(await Deno.readTextFile(file), `${ADDRESS}\n`);
    const second = trackerVerifier({
      addresses: [ADDRESS],
      stateDir: await StateDir.open(first.stateDir.path),
      onTrusted: () => assert.fail("trusted on first use"),
    });
    await assert.rejects(second(FP_SELF, unvouched, ADDRESS), /certificate authority before/);
  });

  await t.step("a renewal vouched for by an authority is accepted", async () => {
    const { stateDir, verify, trusted } = await setUp(temp, "renewal");
    await verify(FP_CA, byAuthority, ADDRESS);
    await verify(FP_RENEWED, byAuthority, ADDRESS);
    assert.deepEqual(trusted, []);
    assert.equal(await stateDir.knownTracker(ADDRESS), undefined);
    // still one line, and still no first-use trust there after the renewal
    assert.equal(await Deno.readTextFile(`${stateDir.path}/authority_trackers`), `${ADDRESS}\n`);
    await assert.rejects(verify(FP_SELF, unvouched, ADDRESS), /certificate authority before/);
  });

  await t.step("other addresses are still trusted on first use", async () => {
    const { verify, trusted } = await setUp(temp, "others");
    await verify(FP_CA, byAuthority, ADDRESS);
    await verify(FP_SELF, unvouched, "tracker.example:5001");
    await verify(FP_SELF, unvouched, "127.0.0.1:5000");
    assert.deepEqual(trusted.map((entry) => entry.address), [
      "tracker.example:5001",
      "127.0.0.1:5000",
    ]);
  });

  await t.step("removing the line gives first-use trust back", async () => {
    const { stateDir, verify, trusted } = await setUp(temp, "removed");
    await verify(FP_CA, byAuthority, ADDRESS);
    await Deno.writeTextFile(`${stateDir.path}/authority_trackers`, "");
    await verify(FP_SELF, unvouched, ADDRESS);
    assert.deepEqual(trusted, [{ address: ADDRESS, fingerprint: FP_SELF }]);
  });

  await t.step("--tracker-fingerprint still rules", async () => {
    const { stateDir } = await setUp(temp, "expected");
    const vouching = trackerVerifier({
      addresses: [ADDRESS],
      stateDir,
      onTrusted: () => {},
    });
    await vouching(FP_CA, byAuthority, ADDRESS);
    assert.equal(await stateDir.wasVouchedByAuthority(ADDRESS), true);
    const strict = trackerVerifier({
      addresses: [ADDRESS],
      stateDir,
      expected: FP_SELF,
      onTrusted: () => assert.fail("nothing to announce"),
    });
    // the operator's self-signed certificate, given up front: accepted
    await strict(FP_SELF, unvouched, ADDRESS);
    // anything else refused, whatever vouches for it
    await assert.rejects(
      strict(FP_RENEWED, byAuthority, ADDRESS),
      identityError(/not SHA256:e{64} as given with --tracker-fingerprint/),
    );
    await assert.rejects(
      strict(FP_CA, unvouched, ADDRESS),
      identityError(/as given with --tracker-fingerprint/),
    );
    assert.equal(await stateDir.knownTracker(ADDRESS), undefined);
    // nor does it touch the record: without it, the self-signed certificate is refused
    await assert.rejects(vouching(FP_SELF, unvouched, ADDRESS), /certificate authority before/);
  });
});

Deno.test("tracker trust: junk in authority_trackers is skipped or refused, never a crash", async (t) => {
  await using temp = await TempDir.create();

  await t.step("binary and lines that are not addresses are skipped", async () => {
    const { stateDir, verify, trusted } = await setUp(temp, "junk");
    const junk = new Uint8Array(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) % 256;
    const text = new TextEncoder().encode(
      [
        "",
        "# tracker.example:5000",
        `${ADDRESS} SHA256:${FP_CA}`,
        "tracker.example",
        "tracker.example:0",
        "tracker.example:99999",
        "not an address",
        "\u0000\u202e:5000",
        "other.example:7000", // no final newline
      ].join("\n"),
    );
    await Deno.writeFile(`${stateDir.path}/authority_trackers`, new Uint8Array([...junk, ...text]));
    // none of the junk names ADDRESS: trusted on first use there
    await verify(FP_SELF, unvouched, ADDRESS);
    assert.deepEqual(trusted, [{ address: ADDRESS, fingerprint: FP_SELF }]);
    // the one good line still counts
    await assert.rejects(verify(FP_SELF, unvouched, "other.example:7000"), IdentityError);
    // and a new line is appended on a line of its own
    await verify(FP_CA, byAuthority, "third.example:1");
    assert.equal(await stateDir.wasVouchedByAuthority("other.example:7000"), true);
    assert.equal(await stateDir.wasVouchedByAuthority("third.example:1"), true);
  });

  await t.step("a file over 1 MiB is refused, naming it, before it is trusted", async () => {
    const { stateDir, verify, trusted } = await setUp(temp, "huge");
    const file = `${stateDir.path}/authority_trackers`;
    await Deno.writeTextFile(file, "x".repeat(1024 * 1024 + 1));
    const tooLarge = (error: unknown) => {
      assert.ok(error instanceof UserError, `${error}`);
      assert.match(error.message, new RegExp(`${file} is larger than 1 MiB`));
      return true;
    };
    await assert.rejects(verify(FP_SELF, unvouched, ADDRESS), tooLarge);
    await assert.rejects(verify(FP_CA, byAuthority, ADDRESS), tooLarge);
    assert.deepEqual(trusted, [], "nothing trusted on first use");
    assert.equal(await stateDir.knownTracker(ADDRESS), undefined, "nothing pinned");
    assert.equal((await Deno.stat(file)).size, 1024 * 1024 + 1, "nothing appended");
  });
});
