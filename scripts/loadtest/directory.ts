/**
 * The directory a load reads: users (each speaking from its own loopback address), groups
 * with members, and files shared in them. Built either through the protocol, as clients
 * would (`create_user`, `login`, `create_group`, `join_group`, `accept_request`,
 * `share_file`), which is bounded by the tracker's scrypt (about 11 logins a second) and its
 * per-user limits; or seeded straight into the tracker's store before the tracker starts,
 * through the store's own methods (no SQL here), with sessions made the way a login makes
 * them, so a directory of 10,000 groups takes seconds instead of hours.
 *
 * Group g is owned by user g mod users; its members are users g to g + members - 1 (mod
 * users), and it holds files `file0.bin` to `file<files-1>.bin`, all shared by the owner.
 *
 * @module
 */

import { generateIdentity, type Identity, issueCertificate } from "../../lib/identity.ts";
import { encodeInfo, infoHashHex } from "../../lib/metainfo.ts";
import { PROTOCOL_VERSION } from "../../lib/protocol.ts";
import { LIMITS } from "../../tracker/account_handlers.ts";
import { hashPassword, newSessionToken, tokenDigest } from "../../tracker/auth.ts";
import { MAX_SHARES_PER_MEMBER } from "../../tracker/file_handlers.ts";
import { MAX_SESSIONS_PER_USER } from "../../tracker/sessions.ts";
import { openStore } from "../../tracker/open_store.ts";
import { inTurn, KEEPALIVE_MS, Link, userAddress } from "./link.ts";

/** How big the directory is. */
export interface DirectoryShape {
  users: number;
  groups: number;
  /** Members per group, the owner included (at most `users`). */
  members: number;
  /** Files shared per group. */
  files: number;
}

/** One load user: where it speaks from, its client certificate (TLS) and session token. */
export interface LoadUser {
  name: string;
  address: string;
  identity?: Identity;
  token?: string;
  /** Indexes of the groups it is a member of. */
  groups: number[];
}

const PASSWORD = "load-password";

/**
 * Requests the protocol route makes, above which `auto` seeds the store instead: about a
 * minute of the tracker's time at the rates measured in docs/tracker_load.md.
 */
const PROTOCOL_REQUESTS_AT_MOST = 40_000;

/** How the directory is built. */
export type Seeding = "protocol" | "store";

/** Requests (and scrypt hashes) building `shape` through the protocol takes. */
function protocolCost(shape: DirectoryShape): { requests: number; hashes: number } {
  const members = Math.min(shape.members, shape.users);
  return {
    requests: 2 * shape.users + shape.groups * (1 + 2 * (members - 1) + shape.files),
    hashes: 2 * shape.users,
  };
}

/**
 * The seeding `auto` picks: the protocol for a directory it builds in about a minute and
 * within the tracker's per-user limits, the store otherwise. Throws when the store is the
 * only way and `seeding` insists on the protocol.
 */
export function chooseSeeding(shape: DirectoryShape, seeding: Seeding | "auto"): Seeding {
  const members = Math.min(shape.members, shape.users);
  const owned = Math.ceil(shape.groups / shape.users);
  const reasons: string[] = [];
  if (owned > LIMITS.groupsOwned) {
    reasons.push(
      `${shape.groups} groups over ${shape.users} users is ${owned} owned each, the tracker ` +
        `lets a user create ${LIMITS.groupsOwned}`,
    );
  }
  if (shape.files > MAX_SHARES_PER_MEMBER) {
    reasons.push(`the tracker lets a member share ${MAX_SHARES_PER_MEMBER} files in a group`);
  }
  if (seeding === "protocol" && reasons.length > 0) {
    throw new Error(`--seed protocol cannot build this directory: ${reasons.join("; ")}`);
  }
  if (seeding !== "auto") return seeding;
  const { requests } = protocolCost({ ...shape, members });
  return reasons.length > 0 || requests > PROTOCOL_REQUESTS_AT_MOST ? "store" : "protocol";
}

/** The users of `shape`, with identities when the links are TLS; no account made yet. */
async function makeUsers(shape: DirectoryShape, plaintext: boolean): Promise<LoadUser[]> {
  const users: LoadUser[] = [];
  for (let i = 0; i < shape.users; i++) {
    users.push({
      name: `load${i}`,
      address: userAddress(i),
      identity: plaintext ? undefined : await generateIdentity(`load user ${i}`),
      groups: [],
    });
  }
  return users;
}

/** The members of group `g`, owner first. */
function membersOf(g: number, users: LoadUser[], shape: DirectoryShape): LoadUser[] {
  const count = Math.min(shape.members, users.length);
  return Array.from({ length: count }, (_, k) => users[(g + k) % users.length]);
}

/** A file of the load directory: its share_file fields. */
function loadFile(g: number, f: number) {
  const name = `file${f}.bin`;
  const info = encodeInfo({
    name,
    length: 1000 + f,
    pieceHashes: crypto.getRandomValues(new Uint8Array(20)),
  });
  return {
    group: `g${g}`,
    name,
    size: 1000 + f,
    sha1: crypto.getRandomValues(new Uint8Array(20)).toHex(),
    info,
    path: `/load/g${g}/${name}`,
  };
}

/**
 * Builds the directory through the protocol on the tracker at `port`: every user makes its
 * account and logs in once from its own address (4 at a time: the tracker hashes two
 * passwords at once, more would only queue there), then owners make their groups, accept
 * their members and share their files.
 */
export async function populateByProtocol(
  port: number,
  shape: DirectoryShape,
  plaintext: boolean,
): Promise<LoadUser[]> {
  const users = await makeUsers(shape, plaintext);
  const links = new Map<LoadUser, Link>();
  // logins take scrypt's time, longer on a busy machine: links that wait for the others
  // would pass the tracker's idle timeout (45 s) before their owners make groups
  const loggedIn = new Set<Link>();
  const keepalive = setInterval(() => {
    for (const link of loggedIn) link.request({ type: "ping" });
  }, KEEPALIVE_MS);
  try {
    await inTurn(users, 4, async (user) => {
      const link = await Link.open(port, user.address, user.identity);
      links.set(user, link);
      const serving = user.identity &&
        await issueCertificate(user.identity, "load peer", [user.address]);
      await link.expect({
        type: "hello",
        version: PROTOCOL_VERSION,
        peer: { host: user.address, port: 9 },
        ...serving ? { peer_cert: serving.certPem } : {},
      });
      await link.expect({ type: "create_user", user: user.name, password: PASSWORD });
      const login = await link.expect({ type: "login", user: user.name, password: PASSWORD });
      user.token = login.token as string;
      loggedIn.add(link);
    });
    await inTurn([...Array(shape.groups).keys()], 16, async (g) => {
      const [owner, ...others] = membersOf(g, users, shape);
      const group = `g${g}`;
      const ownerLink = links.get(owner)!;
      await ownerLink.expect({ type: "create_group", group });
      owner.groups.push(g);
      for (const member of others) {
        await links.get(member)!.expect({ type: "join_group", group });
        await ownerLink.expect({ type: "accept_request", group, user: member.name });
        member.groups.push(g);
      }
      for (let f = 0; f < shape.files; f++) {
        const file = loadFile(g, f);
        await ownerLink.expect({
          type: "share_file",
          ...file,
          info: file.info.toBase64(),
          mtime_ms: 0,
        });
      }
    });
  } finally {
    clearInterval(keepalive);
    for (const link of links.values()) link.close();
  }
  // in the order of the groups, as a seeded store lists them (groups finish out of order)
  for (const user of users) user.groups.sort((a, b) => a - b);
  return users;
}

/**
 * Seeds the directory straight into the store at `dbPath` (the tracker must not be running
 * on it yet): accounts with one scrypt hash shared by all (a load's users all have the same
 * password), a session per user bound to its client certificate as a login would make it,
 * groups, memberships, files and the owners' shares. `signal` stops it between groups
 * (10,000 groups take about a minute; a Ctrl-C waited for the last).
 */
export async function seedStore(
  dbPath: string,
  shape: DirectoryShape,
  plaintext: boolean,
  signal?: AbortSignal,
): Promise<LoadUser[]> {
  const users = await makeUsers(shape, plaintext);
  const passwordHash = await hashPassword(PASSWORD);
  const store = await openStore(dbPath);
  try {
    for (const user of users) {
      await store.createUser(user.name, passwordHash);
      user.token = newSessionToken();
      await store.createSession(
        tokenDigest(user.token),
        user.name,
        user.identity?.fingerprint ?? null,
        MAX_SESSIONS_PER_USER,
      );
    }
    for (let g = 0; g < shape.groups; g++) {
      signal?.throwIfAborted();
      const [owner, ...others] = membersOf(g, users, shape);
      const group = `g${g}`;
      await store.createGroup(group, owner.name);
      owner.groups.push(g);
      for (const member of others) {
        await store.addJoinRequest(group, member.name);
        await store.acceptJoinRequest(group, member.name);
        member.groups.push(g);
      }
      for (let f = 0; f < shape.files; f++) {
        const { path, ...file } = loadFile(g, f);
        await store.shareFile(
          { ...file, infoHash: await infoHashHex(file.info) },
          { user: owner.name, path, mtimeMs: 0 },
        );
      }
    }
  } finally {
    await store.close();
  }
  return users;
}
