import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import { idProblem, isValidId, parseRequest, passwordProblem } from "../lib/protocol.ts";

Deno.test("ids: 1 to 64 of A-Z a-z 0-9 _ . -", () => {
  for (const id of ["a", "Alice_01", "x.y-z", "9", "a".repeat(64)]) assert.ok(isValidId(id), id);
  for (const id of ["", "a".repeat(65), "a b", "é", "a/b", "a\nb", "../x", "a:b"]) {
    assert.ok(!isValidId(id), id);
  }
  assert.match(idProblem("group", "a b")!, /invalid group id "a b"/);
  assert.equal(idProblem("user", "ok"), undefined);
});

Deno.test("passwords: non-empty and bounded", () => {
  assert.match(passwordProblem("")!, /empty/);
  assert.match(passwordProblem("x".repeat(1025))!, /longer/);
  assert.equal(passwordProblem("a b c"), undefined);
});

Deno.test("parseRequest: accepts well-formed requests, copying only known fields", () => {
  assert.deepEqual(
    parseRequest({ id: 4, type: "login", user: "a", password: "p", extra: "dropped" }),
    { id: 4, type: "login", user: "a", password: "p" },
  );
  assert.deepEqual(
    parseRequest({ id: 0, type: "hello", version: 1, peer: { host: "127.0.0.1", port: 9 } }),
    { id: 0, type: "hello", version: 1, peer: { host: "127.0.0.1", port: 9 } },
  );
  assert.deepEqual(parseRequest({ id: 1, type: "list_groups" }), { id: 1, type: "list_groups" });
});

Deno.test("parseRequest: refuses malformed requests with a reason", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ type: "ping" }, /no valid id/],
    [{ id: -1, type: "ping" }, /no valid id/],
    [{ id: 1.5, type: "ping" }, /no valid id/],
    [{ id: "1", type: "ping" }, /no valid id/],
    [{ id: 1 }, /unknown request type/],
    [{ id: 1, type: "toString" }, /unknown request type/],
    [{ id: 1, type: "__proto__" }, /unknown request type/],
    [{ id: 1, type: "login", user: "a" }, /"password"/],
    [{ id: 1, type: "login", user: 5, password: "p" }, /"user"/],
    [{ id: 1, type: "hello" }, /"version"/],
    [{ id: 1, type: "hello", version: 1, peer: { host: "h", port: 70000 } }, /"peer"/],
    [{ id: 1, type: "accept_request", group: "g" }, /"user"/],
  ];
  for (const [frame, reason] of cases) {
    assert.throws(() => parseRequest(frame), (error: Error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, reason);
      return true;
    }, JSON.stringify(frame));
  }
});
