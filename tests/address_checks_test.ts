/**
 * The tracker's checks of serving addresses (issue 13), in process: which addresses it will
 * dial at all, what it accepts, its bounds (slots, waiting, budgets, time), and the one
 * handshake it makes on a real socket, which carries no application byte.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { generateIdentity, pemToDer } from "../lib/identity.ts";
import type { PeerEndpoint } from "../lib/protocol.ts";
import { CertificateFetchError, fetchPeerCertificate, sha256Hex } from "../lib/transport.ts";
import {
  type AddressCheck,
  AddressChecks,
  type AddressChecksOptions,
  addressClass,
  normalizeIp,
} from "../tracker/address_checks.ts";

const TRACKER = { hostname: "127.0.0.1", port: 7000 };
const RIGHT = new Uint8Array([1, 2, 3]);
const WRONG = new Uint8Array([4, 5, 6]);

function endpoint(host: string, port = 6881): PeerEndpoint {
  return { host, port, fingerprint: sha256Hex(RIGHT) };
}

/** Checks whose handshakes are answered by `answer` (default: the right certificate). */
function checks(
  options: Partial<AddressChecksOptions> & {
    answer?: (hostname: string, port: number) => Promise<Uint8Array>;
  } = {},
) {
  const dialled: string[] = [];
  const answer = options.answer ?? (() => Promise.resolve(RIGHT));
  const service = new AddressChecks({
    trackerAddress: TRACKER,
    ...options,
    fetchCertificate: ({ hostname, port }) => {
      dialled.push(`${hostname}:${port}`);
      return answer(hostname, port);
    },
  });
  return { service, dialled };
}

async function outcome(check: AddressCheck): Promise<{ state: string; reason?: string }> {
  await check.settled;
  return { state: check.state, reason: check.reason };
}

Deno.test("address classes: loopback, private, public, unusable", () => {
  const table: [string, string][] = [
    ["127.0.0.1", "loopback"],
    ["127.0.0.2", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.1", "private"],
    ["192.168.1.5", "private"],
    ["169.254.169.254", "private"],
    ["100.64.0.1", "private"],
    ["fe80::1", "private"],
    ["fd00::5", "private"],
    ["172.32.0.1", "public"],
    ["8.8.8.8", "public"],
    ["2001:db8::1", "public"],
    ["0.0.0.0", "unusable"],
    ["::", "unusable"],
    ["224.0.0.1", "unusable"],
    ["255.255.255.255", "unusable"],
    ["ff02::1", "unusable"],
  ];
  for (const [ip, kind] of table) assert.equal(addressClass(ip), kind, ip);
  assert.equal(normalizeIp("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeIp("0:0:0:0:0:0:0:1"), normalizeIp("::1"));
});

Deno.test("address checks: what is accepted", async (t) => {
  await t.step("the registered certificate at the address: verified", async () => {
    const { service, dialled } = checks();
    const check = service.start({
      endpoint: endpoint("127.0.0.2"),
      user: "a",
      seenHost: "127.0.0.1",
    });
    assert.equal(check.state, "pending");
    assert.deepEqual(await outcome(check), { state: "verified", reason: undefined });
    assert.deepEqual(dialled, ["127.0.0.2:6881"]);
    await service.close();
  });

  await t.step("the seen host is dialled too: its port is only claimed", async () => {
    const { service, dialled } = checks({ answer: () => Promise.resolve(WRONG) });
    const check = service.start({
      endpoint: endpoint("127.0.0.1", 9),
      user: "a",
      seenHost: "127.0.0.1",
    });
    const { state, reason } = await outcome(check);
    assert.equal(state, "failed");
    assert.match(reason!, /^127\.0\.0\.1:9 presented another certificate \(SHA256:[0-9a-f]{64}\)/);
    assert.match(reason!, /another program or peer answers there/);
    assert.deepEqual(dialled, ["127.0.0.1:9"]);
    await service.close();
  });

  await t.step("each way a handshake fails has its reason", async () => {
    const cases: [CertificateFetchError | Error, RegExp][] = [
      [
        new CertificateFetchError("refused", "x"),
        /^nothing accepts connections at 127\.0\.0\.2:6881/,
      ],
      [
        new CertificateFetchError("timeout", "x"),
        /no TLS handshake with 127\.0\.0\.2:6881 within 5 s/,
      ],
      [
        new CertificateFetchError("unreachable", "10.9.9.9:1 cannot be reached (EHOSTUNREACH)"),
        /EHOSTUNREACH/,
      ],
      [
        new CertificateFetchError("handshake", "wrong version number"),
        /^no TLS handshake with .*wrong version/,
      ],
      [new Error("boom"), /could not check 127\.0\.0\.2:6881: boom/],
    ];
    for (const [error, reason] of cases) {
      const { service } = checks({ answer: () => Promise.reject(error) });
      const check = service.start({
        endpoint: endpoint("127.0.0.2"),
        user: "a",
        seenHost: "127.0.0.1",
      });
      const result = await outcome(check);
      assert.equal(result.state, "failed");
      assert.match(result.reason!, reason);
      await service.close();
    }
  });

  await t.step("a name is resolved once and its address dialled", async () => {
    const { service, dialled } = checks({
      resolve: (host) => Promise.resolve(host === "peer.example" ? "127.0.0.3" : ""),
    });
    const check = service.start({
      endpoint: endpoint("peer.example"),
      user: "a",
      seenHost: "127.0.0.1",
    });
    assert.equal((await outcome(check)).state, "verified");
    assert.deepEqual(dialled, ["127.0.0.3:6881"]);
    const bad = checks({ resolve: () => Promise.reject(new Error("ENOTFOUND")) });
    const unresolved = bad.service.start({
      endpoint: endpoint("nowhere.invalid"),
      user: "a",
      seenHost: "127.0.0.1",
    });
    assert.match(
      (await outcome(unresolved)).reason!,
      /^nowhere\.invalid cannot be resolved \(ENOTFOUND\)/,
    );
    assert.deepEqual(bad.dialled, []);
    await service.close();
    await bad.service.close();
  });

  await t.step("plaintext: nothing dialled; only the seen host is accepted", async () => {
    const { service, dialled } = checks({ plaintext: true });
    const plain = (host: string) => ({ host, port: 6881 });
    const seen = service.start({
      endpoint: plain("127.0.0.1"),
      user: "a",
      seenHost: "::ffff:127.0.0.1",
    });
    assert.equal((await outcome(seen)).state, "verified");
    const other = service.start({ endpoint: plain("127.0.0.2"), user: "a", seenHost: "127.0.0.1" });
    const result = await outcome(other);
    assert.equal(result.state, "failed");
    assert.match(
      result.reason!,
      /without TLS .* only the address this client's connection comes from \(127\.0\.0\.1\)/,
    );
    assert.deepEqual(dialled, []);
    await service.close();
  });
});

Deno.test("address checks: with TLS, an endpoint without a registered certificate fails", async () => {
  const { service, dialled } = checks();
  const check = service.start({
    endpoint: { host: "127.0.0.2", port: 6881 },
    user: "a",
    seenHost: "127.0.0.2",
  });
  assert.match((await outcome(check)).reason!, /no serving certificate was registered/);
  assert.deepEqual(dialled, []);
  await service.close();
});

Deno.test("address checks: where the tracker never dials", async () => {
  const cases: [string, number, string, RegExp, string?][] = [
    ["127.0.0.1", TRACKER.port, "127.0.0.1", /is the tracker's own address/],
    ["10.0.0.1", TRACKER.port, "10.0.0.9", /is the tracker's own address/, "10.0.0.1"],
    [
      "127.0.0.1",
      6881,
      "203.0.113.7",
      /is a loopback address, but this client's connection comes from 203\.0\.113\.7/,
    ],
    ["192.168.1.5", 6881, "203.0.113.7", /is a private address, but .* --public-addr/],
    ["169.254.169.254", 80, "203.0.113.7", /is a private address/],
    ["0.0.0.0", 6881, "127.0.0.1", /is not an address peers can connect to/],
    ["224.0.0.1", 6881, "127.0.0.1", /is not an address peers can connect to/],
  ];
  for (const [host, port, seenHost, reason, localHost] of cases) {
    const { service, dialled } = checks();
    const check = service.start({ endpoint: endpoint(host, port), user: "a", seenHost, localHost });
    const result = await outcome(check);
    assert.equal(result.state, "failed", host);
    assert.match(result.reason!, reason, host);
    assert.deepEqual(dialled, [], `${host}:${port} was dialled`);
    await service.close();
  }
  // the same addresses from where they make sense are dialled
  const { service, dialled } = checks();
  for (
    const [host, seenHost] of [["127.0.0.1", "127.0.0.1"], ["192.168.1.5", "192.168.1.9"], [
      "192.168.1.5",
      "127.0.0.1",
    ]]
  ) {
    const check = service.start({ endpoint: endpoint(host), user: "a", seenHost });
    assert.equal((await outcome(check)).state, "verified", `${host} from ${seenHost}`);
  }
  assert.equal(dialled.length, 3);
  await service.close();
});

/** A fake handshake that waits until released, counting how many wait at once. */
function gate() {
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  let arrived = () => {};
  return {
    answer: () => {
      inFlight++;
      most = Math.max(most, inFlight);
      arrived();
      return new Promise<Uint8Array>((resolve) =>
        waiting.push(() => {
          inFlight--;
          resolve(RIGHT);
        })
      );
    },
    /** Resolves once `count` handshakes are in flight. */
    async inFlight(count: number) {
      while (inFlight < count) await new Promise<void>((resolve) => arrived = resolve);
    },
    releaseAll() {
      for (const release of waiting.splice(0)) release();
    },
    get most() {
      return most;
    },
  };
}

Deno.test("address checks: 16 at once, 256 waiting, the rest refused at once", async () => {
  const handshakes = gate();
  const { service } = checks({ answer: handshakes.answer });
  const started: AddressCheck[] = [];
  // every check from its own user and address, so no budget is in the way
  const start = (i: number) =>
    service.start({
      endpoint: endpoint(`10.${i >> 8}.${i & 255}.1`),
      user: `u${i}`,
      seenHost: `10.${i >> 8}.${i & 255}.2`,
    });
  for (let i = 0; i < 16 + 256; i++) started.push(start(i));
  await handshakes.inFlight(16);
  assert.equal(service.running, 16);
  assert.equal(service.waiting, 256);
  const refused = start(1000);
  assert.equal(refused.state, "failed", "the 273rd is refused without waiting");
  assert.match(refused.reason!, /too many address checks waiting; reconnect in a minute/);
  while (started.some((check) => check.state === "pending")) {
    handshakes.releaseAll();
    await Promise.race(started.filter((c) => c.state === "pending").map((c) => c.settled));
    await handshakes.inFlight(Math.min(16, started.filter((c) => c.state === "pending").length));
  }
  assert.equal(handshakes.most, 16, "never more than 16 handshakes at once");
  assert.ok(started.every((check) => check.state === "verified"));
  await service.close();
});

Deno.test("address checks: budgets per user and per address", async (t) => {
  await t.step("over budget beyond the longest wait: refused, with when to reconnect", async () => {
    let now = 1_000_000;
    const { service, dialled } = checks({
      perUser: { burst: 2, perMinute: 2 },
      maxBudgetWaitMs: 0,
      now: () => now,
    });
    const start = (user: string, seenHost = "127.0.0.1") =>
      service.start({ endpoint: endpoint("127.0.0.2"), user, seenHost });
    assert.equal((await outcome(start("a"))).state, "verified");
    assert.equal((await outcome(start("a"))).state, "verified");
    const third = await outcome(start("a"));
    assert.equal(third.state, "failed");
    assert.match(third.reason!, /too many address checks for user a lately; reconnect in 30 s/);
    assert.equal((await outcome(start("b"))).state, "verified", "another user is not held back");
    now += 30_000;
    assert.equal((await outcome(start("a"))).state, "verified", "the budget refills");
    assert.equal(dialled.length, 4, "a refused check dials nothing");
    await service.close();
  });

  await t.step("per address, across users (accounts are free)", async () => {
    const { service } = checks({
      perSource: { burst: 3, perMinute: 1 },
      maxBudgetWaitMs: 0,
      now: () => 5,
    });
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(
        await outcome(
          service.start({ endpoint: endpoint("127.0.0.2"), user: `u${i}`, seenHost: "127.0.0.9" }),
        ),
      );
    }
    assert.deepEqual(results.map((r) => r.state), ["verified", "verified", "verified", "failed"]);
    assert.match(results[3].reason!, /too many address checks for address 127\.0\.0\.9 lately/);
    await service.close();
  });

  await t.step("within the longest wait: the check waits for its budget", async () => {
    const { service } = checks({ perUser: { burst: 1, perMinute: 6000 } });
    const first = service.start({
      endpoint: endpoint("127.0.0.2"),
      user: "a",
      seenHost: "127.0.0.1",
    });
    const second = service.start({
      endpoint: endpoint("127.0.0.2"),
      user: "a",
      seenHost: "127.0.0.1",
    });
    assert.equal(service.waiting, 1, "the second waits ~10 ms for its token");
    assert.equal((await outcome(first)).state, "verified");
    assert.equal((await outcome(second)).state, "verified");
    await service.close();
  });
});

Deno.test("address checks: close fails what is pending and leaves nothing running", async () => {
  const handshakes = gate();
  const { service } = checks({ answer: handshakes.answer, perUser: { burst: 1, perMinute: 1 } });
  const running = service.start({
    endpoint: endpoint("127.0.0.2"),
    user: "a",
    seenHost: "127.0.0.1",
  });
  const budgetWait = service.start({
    endpoint: endpoint("127.0.0.2"),
    user: "a",
    seenHost: "127.0.0.1",
  });
  await handshakes.inFlight(1);
  const closing = service.close();
  handshakes.releaseAll();
  await closing;
  assert.equal(running.state, "verified");
  assert.equal(budgetWait.state, "failed");
  assert.match(budgetWait.reason!, /shutting down/);
  const late = service.start({ endpoint: endpoint("127.0.0.2"), user: "b", seenHost: "127.0.0.1" });
  assert.equal(late.state, "failed");
});

Deno.test("fetchPeerCertificate: a bare TLS handshake, bounded in time", async (t) => {
  const identity = await generateIdentity("probe target", ["127.0.0.1"]);
  let applicationBytes = 0;
  let handshakes = 0;
  const closed = Promise.withResolvers<void>();
  const server = tls.createServer({
    cert: identity.certPem,
    key: identity.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
  }, (socket) => {
    handshakes++;
    socket.on("data", (chunk: Uint8Array) => applicationBytes += chunk.length);
    socket.on("error", () => {});
    socket.on("close", () => closed.resolve());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const silent = net.createServer((socket) => socket.on("error", () => {}));
  const silentSockets = new Set<net.Socket>();
  silent.on("connection", (socket) => {
    silentSockets.add(socket);
    socket.on("close", () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  try {
    await t.step("the certificate presented, and not one byte of application data", async () => {
      const der = await fetchPeerCertificate({ hostname: "127.0.0.1", port, timeoutMs: 5_000 });
      assert.equal(sha256Hex(der), sha256Hex(pemToDer(identity.certPem, "CERTIFICATE")));
      await closed.promise;
      assert.equal(handshakes, 1);
      assert.equal(applicationBytes, 0);
    });

    await t.step("a closed port: refused", async () => {
      const free = net.createServer();
      await new Promise<void>((resolve) => free.listen(0, "127.0.0.1", resolve));
      const freePort = (free.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => free.close(() => resolve()));
      await assert.rejects(
        fetchPeerCertificate({ hostname: "127.0.0.1", port: freePort, timeoutMs: 5_000 }),
        (error: CertificateFetchError) => error.kind === "refused",
      );
    });

    await t.step("a listener that never answers: given up after the time", async () => {
      const started = performance.now();
      await assert.rejects(
        fetchPeerCertificate({ hostname: "127.0.0.1", port: silentPort, timeoutMs: 300 }),
        (error: CertificateFetchError) =>
          error.kind === "timeout" && /within 0\.3 s/.test(error.message),
      );
      assert.ok(performance.now() - started < 3_000);
    });
  } finally {
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
