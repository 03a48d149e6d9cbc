/**
 * A tracker with its operator's own certificate (`--tls-cert`, `--tls-key`), issued by a
 * certificate authority: a client dialling it by host name and trusting that authority
 * accepts it without a pin (its certificate changes at every renewal), and refuses it at
 * that address once it no longer trusts the authority (an interceptor's certificate looks
 * like that); one that never trusted the authority pins it on first use like any
 * self-signed tracker; and
 * `--tracker-fingerprint` stays strict either way. The authority is made with the openssl
 * command line for the test; clients are told to trust it through `DENO_CERT`.
 */

import assert from "node:assert/strict";
import { JsonShell, TempDir, TrackerProcess } from "./harness.ts";

const HAS_OPENSSL = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((result) => result.success, () => false);
if (!HAS_OPENSSL) {
  console.error("operator_cert_test: openssl is not installed (apt-get install openssl); skipped");
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  const result = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!result.success) {
    throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

/** A certificate authority and a server certificate it signed for `localhost`. */
async function makeAuthority(dir: string): Promise<{ ca: string; chain: string; key: string }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Swarmshare Test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
  ]); // deno-fmt-ignore
  await openssl(dir, [
    "req", ...ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost",
  ]); // deno-fmt-ignore
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "1",
    "-extfile",
    "leaf.ext",
  ]); // deno-fmt-ignore
  const chain = `${dir}/chain.pem`;
  await Deno.writeTextFile(
    chain,
    (await Deno.readTextFile(`${dir}/leaf.pem`)) + (await Deno.readTextFile(`${dir}/ca.pem`)),
  );
  return { ca: `${dir}/ca.pem`, chain, key: `${dir}/leaf.key` };
}

Deno.test({
  name: "an operator's CA-issued tracker certificate: verified by name, pinned otherwise",
  ignore: !HAS_OPENSSL,
  async fn(t) {
    await using dir = await TempDir.create();
    const authority = await makeAuthority(dir.path);
    await using tracker = await TrackerProcess.start(dir.join("tracker.db"), {
      extraArgs: ["--tls-cert", authority.chain, "--tls-key", authority.key],
    });
    assert.match(tracker.fingerprint ?? "", /^SHA256:[0-9a-f]{64}$/);

    await t.step("trusting the authority, by name: accepted with no pin", async () => {
      const stateHome = dir.join("trusting");
      await Deno.mkdir(stateHome);
      await using shell = JsonShell.start(tracker.port, {
        trackerHost: "localhost",
        stateHome,
        env: { DENO_CERT: authority.ca },
      });
      await shell.ok("create_user carol pw");
      await shell.ok("login carol pw");
      assert.deepEqual(shell.events, [], "no first-use trust: the authority vouched");
      const pins = await Deno.readTextFile(`${stateHome}/swarmshare/known_trackers`)
        .catch(() => "");
      assert.equal(pins.trim(), "", "nothing pinned");
      assert.equal(
        await Deno.readTextFile(`${stateHome}/swarmshare/authority_trackers`),
        `localhost:${tracker.port}\n`,
        "the address is remembered as vouched for",
      );
    });

    await t.step("vouched for before, then not: refused, not trusted on first use", async () => {
      // the same client without the authority: what an interceptor's certificate looks like
      const stateHome = dir.join("trusting");
      await using shell = JsonShell.start(tracker.port, { trackerHost: "localhost", stateHome });
      assert.match(
        await shell.fails("login carol pw"),
        /was vouched for by a certificate authority before, and this certificate .* is not/,
      );
      assert.ok(!shell.events.some((event) => event.event === "tracker_trusted"));
      const pins = await Deno.readTextFile(`${stateHome}/swarmshare/known_trackers`)
        .catch(() => "");
      assert.equal(pins.trim(), "", "nothing pinned");
    });

    await t.step("not trusting the authority: pinned on first use", async () => {
      await using shell = JsonShell.start(tracker.port, { trackerHost: "localhost" });
      await shell.ok("login carol pw");
      const trusted = shell.events.find((event) => event.event === "tracker_trusted");
      assert.equal(trusted?.fingerprint, tracker.fingerprint);
    });

    await t.step("by IP address the authority does not count: pinned on first use", async () => {
      await using shell = JsonShell.start(tracker.port, { env: { DENO_CERT: authority.ca } });
      await shell.ok("login carol pw");
      assert.ok(shell.events.some((event) => event.event === "tracker_trusted"));
    });

    await t.step("--tracker-fingerprint stays strict over the authority", async () => {
      await using shell = JsonShell.start(tracker.port, {
        trackerHost: "localhost",
        env: { DENO_CERT: authority.ca },
        extraArgs: ["--tracker-fingerprint", `SHA256:${"0".repeat(64)}`],
      });
      assert.match(await shell.fails("login carol pw"), /fingerprint/);
    });
  },
});
