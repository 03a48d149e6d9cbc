/**
 * A tracker holds at most so many connections not logged in (strangers: anyone may open
 * them, for nothing); one more closes the oldest, with the login deadline's notice, so a
 * flood of connections that never log in has a bounded cost and keeps nobody out. A
 * logged-in connection is no stranger, and a logout makes it one again.
 */

import assert from "node:assert/strict";
import { generateIdentity } from "../lib/identity.ts";
import { Tracker } from "../tracker/server.ts";
import { TempDir, within } from "./harness.ts";
import { rawTrackerLink } from "./raw_tls.ts";

type Link = Awaited<ReturnType<typeof rawTrackerLink>>;

/** Whether `link` was closed with the tracker's notice that it had too many strangers. */
async function crowdedOut(link: Link): Promise<boolean> {
  await within(link.closed, "the tracker to close the oldest stranger");
  return link.frames.some((frame) =>
    frame.id === 0 &&
    /too many connections not logged in/.test(String((frame.error as { message: string }).message))
  );
}

Deno.test("a tracker holds at most its strangers; a newcomer closes the oldest", async () => {
  await using temp = await TempDir.create();
  const tracker = await Tracker.start({
    hostname: "127.0.0.1",
    port: 0,
    dbPath: temp.join("tracker.db"),
    log: () => {},
    maxStrangers: 3,
  });
  const identity = await generateIdentity("strangers test");
  const links: Link[] = [];
  const connect = async () => {
    const link = await rawTrackerLink(tracker.address.port, identity);
    links.push(link);
    return link;
  };
  try {
    const [first, second, third] = [await connect(), await connect(), await connect()];
    const fourth = await connect();
    assert.equal(await crowdedOut(first), true, "the oldest stranger is closed, with a notice");
    // a user logged in is no stranger: room for one more, and then the next passes it by
    assert.equal(
      (await second.request({ type: "create_user", user: "u", password: "p" })).ok,
      true,
    );
    assert.equal((await second.request({ type: "login", user: "u", password: "p" })).ok, true);
    const fifth = await connect();
    assert.equal((await third.request({ type: "ping" })).ok, true, "three strangers: all kept");
    const sixth = await connect();
    assert.equal(await crowdedOut(third), true);
    for (const open of [second, fourth, fifth, sixth]) {
      assert.equal((await open.request({ type: "ping" })).ok, true, "still served");
    }
    // a logout makes it a stranger again, the newest: the oldest one makes room for it
    assert.equal((await second.request({ type: "logout" })).ok, true);
    assert.equal(await crowdedOut(fourth), true);
    for (const open of [second, fifth, sixth]) {
      assert.equal((await open.request({ type: "ping" })).ok, true, "still served");
    }
  } finally {
    for (const link of links) link.close();
    await tracker.close();
  }
});
