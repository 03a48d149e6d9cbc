/** ServingCaps: places per user and per (user, file), taken once and given back once. */

import assert from "node:assert/strict";
import { ServingCaps } from "../peer/serving_caps.ts";

Deno.test("ServingCaps: per file, per user, and places given back", async (t) => {
  const caps = new ServingCaps({ maxPerUser: 3, maxPerUserFile: 2 });
  const [a, b, c, d, e] = [{}, {}, {}, {}, {}];

  await t.step("a file's cap comes first", () => {
    assert.equal(caps.admit(a, "bob", "f1"), undefined);
    assert.equal(caps.admit(b, "bob", "f1"), undefined);
    assert.equal(
      caps.admit(c, "bob", "f1"),
      "bob already has 2 connections for this file here, the most one user may have",
    );
    assert.equal(caps.servedFor("bob"), 2);
  });

  await t.step("then the user's over all files; other users are apart", () => {
    assert.equal(caps.admit(c, "bob", "f2"), undefined);
    assert.equal(
      caps.admit(d, "bob", "f3"),
      "bob already has 3 connections here, the most one user may have",
    );
    assert.equal(caps.admit(d, "carol", "f1"), undefined);
    assert.equal(caps.servedFor("carol"), 1);
  });

  await t.step("admitting a connection twice takes one place", () => {
    assert.equal(caps.admit(a, "bob", "f1"), undefined);
    assert.equal(caps.servedFor("bob"), 3);
  });

  await t.step("a release gives one place back, once", () => {
    caps.release(a);
    caps.release(a);
    caps.release(e); // never admitted
    assert.equal(caps.servedFor("bob"), 2);
    assert.equal(caps.admit(e, "bob", "f1"), undefined);
    assert.equal(caps.servedFor("bob"), 3);
    for (const connection of [b, c, d, e]) caps.release(connection);
    assert.equal(caps.servedFor("bob"), 0);
    assert.equal(caps.servedFor("carol"), 0);
  });
});

Deno.test("ServingCaps: the observer hears each place taken and given back, once", () => {
  const heard: string[] = [];
  const caps = new ServingCaps({
    maxPerUserFile: 1,
    observer: {
      served: (_, user, file) => heard.push(`served ${user} ${file}`),
      released: (_, user, file) => heard.push(`released ${user} ${file}`),
    },
  });
  const [a, b] = [{}, {}];
  caps.admit(a, "bob", "f1");
  caps.admit(a, "bob", "f1"); // held already: nothing new
  caps.admit(b, "bob", "f1"); // refused: nothing served
  caps.release(b);
  caps.release(a);
  caps.release(a);
  assert.deepEqual(heard, ["served bob f1", "released bob f1"]);
});
