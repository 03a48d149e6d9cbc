/**
 * Login sessions on the tracker, through the real handlers and a real store of every kind
 * (tests/store_backends.ts: SQLite, and PostgreSQL when installed): bound to the client
 * certificate, expired when idle, bounded per user, listed by public ids, and ended with
 * every connection that uses them. Two "devices" are two connections with `fingerprint` set
 * as the TLS server will set it.
 */

import { PasswordWork } from "../tracker/password_work.ts";
import assert from "node:assert/strict";
import type { Request } from "../lib/protocol.ts";
import { hashPassword, loadTicketSigner, type TicketSigner, tokenDigest } from "../tracker/auth.ts";
import { type ConnectionState, type HandlerContext, RequestError } from "../tracker/context.ts";
import { handleRequest } from "../tracker/handlers.ts";
import { InfoUploads } from "../tracker/info_uploads.ts";
import { ClientEvents } from "../tracker/events.ts";
import { Presence } from "../tracker/presence.ts";
import { SESSION_TOUCH_INTERVAL_MS, sessionId, Sessions } from "../tracker/sessions.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { type StoreBackend, storeKinds } from "./store_backends.ts";

const FP_LAPTOP = "a".repeat(64);
const FP_PHONE = "b".repeat(64);
const MINUTE = 60_000;
const DAY = 24 * 3600_000;

/** A tracker's state without its sockets: store, sessions, and connections made at will. */
class Bench implements AsyncDisposable {
  /** The clock of the store and the sessions (ms); tests move it. */
  now = 0;
  readonly store: TrackerStore;
  readonly sessions: Sessions;
  readonly passwords = new PasswordWork();
  #nextId = 1;

  private constructor(
    readonly tickets: TicketSigner,
    store: TrackerStore,
    readonly presence: Presence,
    sessions: Sessions,
  ) {
    this.store = store;
    this.sessions = sessions;
  }

  /** A bench on a new database of `backend`. */
  static async create(
    backend: StoreBackend,
    options: { maxIdleMs?: number; maxPerUser?: number } = {},
  ) {
    const clock = { bench: undefined as Bench | undefined, start: 1_700_000_000_000 };
    const now = () => clock.bench?.now ?? clock.start;
    const store = await backend.open(`s${crypto.randomUUID().slice(0, 8)}`, { now });
    const presence = new Presence();
    const sessions = new Sessions({ store, presence, now, ...options });
    const bench = new Bench(await loadTicketSigner(store), store, presence, sessions);
    bench.now = clock.start;
    clock.bench = bench;
    await store.createUser("alice", await hashPassword("pw-alice"));
    await store.createUser("bob", await hashPassword("pw-bob"));
    return bench;
  }

  connect(fingerprint?: string): HandlerContext {
    const connection: ConnectionState = { id: this.#nextId++, fingerprint };
    return {
      store: this.store,
      connection,
      decoyHash: hashPassword("decoy"),
      passwords: this.passwords,
      presence: this.presence,
      tickets: this.tickets,
      sessions: this.sessions,
      events: new ClientEvents({ presence: this.presence }),
      infoUploads: new InfoUploads(),
    };
  }

  /** What the server does with a request: count the use, then run the handler. */
  async request<T extends Request["type"]>(
    context: HandlerContext,
    type: T,
    params: Omit<Extract<Request, { type: T }>, "type"> = {} as never,
  ): Promise<unknown> {
    await this.sessions.touch(context.connection);
    return await handleRequest(context, { type, ...params } as never);
  }

  async login(context: HandlerContext, user = "alice"): Promise<string> {
    const data = await this.request(context, "login", { user, password: `pw-${user}` });
    return (data as { token: string }).token;
  }

  async [Symbol.asyncDispose]() {
    await this.store.close();
  }
}

async function refused(promise: Promise<unknown>, code: string, message?: string | RegExp) {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof RequestError, String(error));
    assert.equal(error.code, code);
    if (typeof message === "string") assert.equal(error.message, message);
    else if (message) assert.match(error.message, message);
    return true;
  });
}

const EXPIRED = "the session has expired: log in again";

/** The cases, each run on every kind of store (at the end of the file). */
const CASES: {
  name: string;
  fn: (t: Deno.TestContext, backend: StoreBackend) => Promise<void>;
}[] = [];

function test(name: string, fn: (t: Deno.TestContext, backend: StoreBackend) => Promise<void>) {
  CASES.push({ name, fn });
}

test("sessions: a token resumes only with the certificate that logged in", async (t, backend) => {
  await using bench = await Bench.create(backend);
  const laptop = bench.connect(FP_LAPTOP);
  const token = await bench.login(laptop);

  await t.step("the same certificate resumes", async () => {
    const again = bench.connect(FP_LAPTOP);
    assert.equal(
      (await bench.request(again, "resume", { token }) as { user: string }).user,
      "alice",
    );
    assert.deepEqual(await bench.request(again, "list_groups"), []);
  });

  await t.step("another certificate, or none, is refused like an unknown token", async () => {
    await refused(
      bench.request(bench.connect(FP_PHONE), "resume", { token }),
      "unauthenticated",
      EXPIRED,
    );
    await refused(bench.request(bench.connect(), "resume", { token }), "unauthenticated", EXPIRED);
    await refused(
      bench.request(bench.connect(FP_LAPTOP), "resume", { token: "not-a-token" }),
      "unauthenticated",
      EXPIRED,
    );
    const thief = bench.connect(FP_PHONE);
    await refused(bench.request(thief, "resume", { token }), "unauthenticated");
    await refused(bench.request(thief, "list_groups"), "unauthenticated", /^not logged in/);
  });

  await t.step("a refused thief does not end the owner's session", async () => {
    assert.ok(await bench.store.session(tokenDigest(token)));
    await bench.request(bench.connect(FP_LAPTOP), "resume", { token });
  });

  await t.step("plaintext on both sides (no certificates) works as before", async () => {
    const plain = bench.connect();
    const plainToken = await bench.login(plain);
    assert.equal((await bench.store.session(tokenDigest(plainToken)))?.fingerprint, null);
    await bench.request(bench.connect(), "resume", { token: plainToken });
    await refused(
      bench.request(bench.connect(FP_LAPTOP), "resume", { token: plainToken }),
      "unauthenticated",
      EXPIRED,
    );
  });
});

test(
  "sessions: idle expiry at resume and on use; uses are written once a minute",
  async (t, backend) => {
    await using bench = await Bench.create(backend, { maxIdleMs: 10 * DAY });
    const laptop = bench.connect(FP_LAPTOP);
    const token = await bench.login(laptop);
    const digest = tokenDigest(token);
    const createdAt = bench.now;

    await t.step("a request refreshes last use at most once a minute per connection", async () => {
      bench.now += 30_000;
      await bench.request(laptop, "list_groups");
      assert.equal((await bench.store.session(digest))?.lastSeenAt, createdAt, "within the minute");
      bench.now += SESSION_TOUCH_INTERVAL_MS;
      await bench.request(laptop, "list_groups");
      assert.equal((await bench.store.session(digest))?.lastSeenAt, bench.now);
    });

    await t.step("a resume within the limit works and counts as a use", async () => {
      bench.now += 9 * DAY;
      await bench.request(bench.connect(FP_LAPTOP), "resume", { token });
      assert.equal((await bench.store.session(digest))?.lastSeenAt, bench.now);
    });

    await t.step("unused for longer than the limit: refused at resume and deleted", async () => {
      bench.now += 10 * DAY + 1;
      await refused(
        bench.request(bench.connect(FP_LAPTOP), "resume", { token }),
        "unauthenticated",
        EXPIRED,
      );
      assert.equal(await bench.store.session(digest), undefined);
    });

    await t.step(
      "a connection whose session expired is logged out at its next request",
      async () => {
        const phone = bench.connect(FP_PHONE);
        const phoneToken = await bench.login(phone);
        bench.now += 10 * DAY + MINUTE;
        await refused(bench.request(phone, "list_groups"), "unauthenticated", /^not logged in/);
        assert.equal(phone.connection.user, undefined);
        assert.equal(await bench.store.session(tokenDigest(phoneToken)), undefined);
      },
    );

    await t.step("start-up pruning uses the same limit", async () => {
      const token2 = await bench.login(bench.connect());
      bench.now += 10 * DAY + 1;
      assert.equal(await bench.sessions.prune(), 1);
      assert.equal(await bench.store.session(tokenDigest(token2)), undefined);
    });
  },
);

test(
  "sessions: at most so many per user; the oldest goes and its connections log out",
  async (_t, backend) => {
    await using bench = await Bench.create(backend, { maxPerUser: 3 });
    const first = bench.connect();
    const firstToken = await bench.login(first);
    const bob = bench.connect();
    await bench.login(bob, "bob");
    for (let i = 0; i < 2; i++) {
      bench.now += 1;
      await bench.login(bench.connect());
    }
    assert.equal((await bench.store.userSessions("alice")).length, 3);
    assert.equal(first.connection.user, "alice");
    bench.now += 1;
    await bench.login(bench.connect());
    assert.equal((await bench.store.userSessions("alice")).length, 3);
    assert.equal(await bench.store.session(tokenDigest(firstToken)), undefined);
    assert.equal(first.connection.user, undefined, "the evicted session's connection is out");
    await refused(bench.request(first, "list_groups"), "unauthenticated");
    assert.equal((await bench.store.userSessions("bob")).length, 1, "other users keep theirs");
    assert.equal(bob.connection.user, "bob");
  },
);

test("sessions: list_sessions shows stable public ids, never the token", async (_t, backend) => {
  await using bench = await Bench.create(backend);
  const laptop = bench.connect(FP_LAPTOP);
  const laptopToken = await bench.login(laptop);
  bench.now += 1_000;
  const phone = bench.connect(FP_PHONE);
  const phoneToken = await bench.login(phone);
  await bench.login(bench.connect(), "bob");

  const listed = await bench.request(laptop, "list_sessions") as Record<string, unknown>[];
  assert.deepEqual(listed, [
    {
      id: sessionId(tokenDigest(phoneToken)),
      created_at: bench.now,
      last_seen_at: bench.now,
      fingerprint: FP_PHONE,
      current: false,
      online: true,
    },
    {
      id: sessionId(tokenDigest(laptopToken)),
      created_at: bench.now - 1_000,
      last_seen_at: bench.now - 1_000,
      fingerprint: FP_LAPTOP,
      current: true,
      online: true,
    },
  ]);
  const text = JSON.stringify(listed);
  for (
    const secret of [laptopToken, phoneToken, tokenDigest(laptopToken), tokenDigest(phoneToken)]
  ) {
    assert.ok(!text.includes(secret), "neither a token nor its digest is shown");
  }
  for (const entry of listed) assert.match(String(entry.id), /^[0-9a-f]{8}$/);

  // the same ids later, after the phone went offline and came back
  bench.sessions.disconnected(phone.connection);
  await bench.request(bench.connect(FP_PHONE), "resume", { token: phoneToken });
  const again = await bench.request(laptop, "list_sessions") as Record<string, unknown>[];
  assert.deepEqual(again.map((entry) => entry.id), listed.map((entry) => entry.id));
  await refused(bench.request(bench.connect(), "list_sessions"), "unauthenticated");
});

test(
  "sessions: end_sessions ends others, one, or all, and logs their connections out",
  async (t, backend) => {
    await using bench = await Bench.create(backend);
    const laptop = bench.connect(FP_LAPTOP);
    await bench.login(laptop);
    const phone = bench.connect(FP_PHONE);
    const phoneToken = await bench.login(phone);
    const tablet = bench.connect();
    const tabletToken = await bench.login(tablet);
    const bob = bench.connect();
    const bobToken = await bench.login(bob, "bob");
    const ownId = sessionId(laptop.connection.tokenDigest!);

    await t.step("refusals: bad scope, own id, unknown id, another user's id", async () => {
      await refused(bench.request(laptop, "end_sessions", { scope: "everyone" }), "bad_request");
      await refused(bench.request(laptop, "end_sessions", { scope: "ABCDEF12" }), "bad_request");
      await refused(
        bench.request(laptop, "end_sessions", { scope: ownId }),
        "conflict",
        /use logout/,
      );
      const unknown = ownId === "00000000" ? "00000001" : "00000000";
      await refused(bench.request(laptop, "end_sessions", { scope: unknown }), "not_found");
      await refused(
        bench.request(laptop, "end_sessions", { scope: sessionId(tokenDigest(bobToken)) }),
        "not_found",
        /you have no session/,
      );
      await refused(
        bench.request(bench.connect(), "end_sessions", { scope: "all" }),
        "unauthenticated",
      );
      assert.equal(bob.connection.user, "bob");
    });

    await t.step("one session by id: its connection is out, its token dead", async () => {
      const id = sessionId(tokenDigest(phoneToken));
      const address = { host: "127.0.0.1", port: 6881 };
      const holder = { connectionId: phone.connection.id, user: "alice", address, complete: true };
      bench.presence.hold("g", "f".repeat(40), holder);
      assert.deepEqual(await bench.request(laptop, "end_sessions", { scope: id }), { ended: 1 });
      assert.deepEqual(
        bench.presence.holders("g", "f".repeat(40)),
        [],
        "peers stop being sent there",
      );
      await refused(bench.request(phone, "list_groups"), "unauthenticated", /^not logged in/);
      await refused(
        bench.request(bench.connect(FP_PHONE), "resume", { token: phoneToken }),
        "unauthenticated",
        EXPIRED,
      );
    });

    await t.step("others: every session but this one", async () => {
      await bench.login(phone);
      assert.deepEqual(await bench.request(laptop, "end_sessions", { scope: "others" }), {
        ended: 2,
      });
      assert.equal(tablet.connection.user, undefined);
      assert.equal(phone.connection.user, undefined);
      assert.equal(await bench.store.session(tokenDigest(tabletToken)), undefined);
      assert.deepEqual(
        (await bench.request(laptop, "list_sessions") as { current: boolean }[]).map((s) =>
          s.current
        ),
        [true],
      );
    });

    await t.step("all: this one too; bob is untouched", async () => {
      await bench.login(phone);
      assert.deepEqual(await bench.request(laptop, "end_sessions", { scope: "all" }), { ended: 2 });
      assert.equal(laptop.connection.user, undefined);
      assert.equal(phone.connection.user, undefined);
      assert.deepEqual(await bench.store.userSessions("alice"), []);
      assert.equal(bob.connection.user, "bob");
      assert.deepEqual(await bench.request(bob, "list_groups"), []);
    });
  },
);

for (const kind of storeKinds()) {
  Deno.test({
    name: `sessions on ${kind.name}`,
    ignore: kind.unavailable !== undefined,
    async fn(t) {
      await using backend = await kind.start();
      for (const { name, fn } of CASES) await t.step(name, (step) => fn(step, backend));
    },
  });
}
