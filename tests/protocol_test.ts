import assert from "node:assert/strict";
import { ProtocolError } from "../lib/errors.ts";
import {
  fileNameProblem,
  idProblem,
  isValidId,
  MAX_SHARED_NAME_BYTES,
  parsePush,
  parseRequest,
  passwordProblem,
  quoted,
  shownName,
} from "../lib/protocol.ts";

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
  assert.deepEqual(
    parseRequest({ id: 2, type: "stop_share", group: "g", name: "f", keep_if_held: true }),
    { id: 2, type: "stop_share", group: "g", name: "f", keep_if_held: true },
  );
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
    [{ id: 1, type: "stop_share", group: "g", name: "f", keep_if_held: "yes" }, /"keep_if_held"/],
  ];
  for (const [frame, reason] of cases) {
    assert.throws(() => parseRequest(frame), (error: Error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, reason);
      return true;
    }, JSON.stringify(frame));
  }
});

Deno.test("file names: what can be shared, downloaded and printed safely", async (t) => {
  await t.step("accepted", () => {
    for (
      const name of [
        "a.iso",
        "my notes.txt",
        ".hidden",
        "x".repeat(MAX_SHARED_NAME_BYTES),
        "é".repeat(MAX_SHARED_NAME_BYTES / 2),
        "report.swarmshare-part", // not hidden: cannot collide with a part file
        "日本語.pdf",
      ]
    ) {
      assert.equal(fileNameProblem(name), undefined, name);
    }
  });
  await t.step("refused, each with a reason", () => {
    const cases: [string, RegExp][] = [
      ["", /empty/],
      ["x".repeat(MAX_SHARED_NAME_BYTES + 1), /at most 238/],
      ["é".repeat(120), /240 bytes long/],
      [".", /cannot be a file name/],
      ["..", /cannot be a file name/],
      ["a/b", /slashes/],
      ["a\\b", /slashes/],
      ["a\u0000b", /control/],
      ["a\u001bb", /control/],
      ["del\u007f", /control/],
      ["c1\u0085", /control/],
      ["c1\u009b[31m", /control/],
      ["gnp\u202e.exe", /text-direction/],
      ["a\u2066b\u2069", /text-direction/],
      ["lrm\u200e", /text-direction/],
      [".report.pdf.swarmshare-part", /part files/],
    ];
    for (const [name, reason] of cases) {
      assert.match(fileNameProblem(name) ?? "accepted", reason, JSON.stringify(name));
    }
  });
  await t.step("a refused name is quoted without its controls, and short", () => {
    const message = fileNameProblem("gnp\u202e.exe\u001b[2J")!;
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\u0000-\u001f\u202e]/.test(message), message);
    assert.ok(message.includes("\\u202e"), message);
    assert.ok(shownName("y".repeat(500)).length <= 103);
  });
  await t.step("any string: a verdict, never a throw; accepted names print as they are", () => {
    for (let seed = 1; seed <= 2000; seed++) {
      let x = seed;
      const chars: number[] = [];
      const length = seed % 40;
      for (let i = 0; i < length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        chars.push(x % 3 === 0 ? x % 0x80 : x % 0x2100);
      }
      const name = String.fromCharCode(...chars);
      const problem = fileNameProblem(name);
      if (problem === undefined) {
        assert.equal(shownName(name), name.slice(0, 100) + (name.length > 100 ? "..." : ""));
      } else assert.equal(typeof problem, "string");
    }
  });
});

Deno.test("what a peer sent is quoted short and safe in every refusal", () => {
  const huge = "\u001b[2J" + "x".repeat(1 << 20);
  const messages = [
    idProblem("group", huge)!,
    (() => {
      try {
        parseRequest({ id: 1, type: huge });
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    })(),
    fileNameProblem(huge)!,
  ];
  for (const message of messages) {
    assert.ok(message.length < 300, `${message.length} characters`);
    assert.ok(!message.includes("\u001b"), message.slice(0, 80));
  }
  assert.equal(quoted("ok"), '"ok"');
});

Deno.test("address_check pushes and hello's pushes: what a client asks for and gets", async (t) => {
  await t.step("hello lists the push kinds it understands; a bad list is refused", () => {
    assert.deepEqual(
      parseRequest({ id: 0, type: "hello", version: 2, pushes: ["address_check"] }),
      { id: 0, type: "hello", version: 2, pushes: ["address_check"] },
    );
    for (const pushes of ["address_check", [5], [""], ["x".repeat(33)], Array(17).fill("a")]) {
      assert.throws(
        () => parseRequest({ id: 0, type: "hello", version: 2, pushes }),
        /malformed field "pushes"/,
        JSON.stringify(pushes),
      );
    }
  });

  await t.step("well-formed: verified, or not with a reason", () => {
    const verified = { push: "address_check", host: "127.0.0.1", port: 6881, verified: true };
    assert.deepEqual(parsePush(verified), verified);
    const failed = { ...verified, verified: false, reason: "nothing accepts connections" };
    assert.deepEqual(parsePush(failed), failed);
  });

  await t.step("malformed ones are refused", () => {
    const good = { push: "address_check", host: "h", port: 1, verified: false, reason: "r" };
    for (
      const frame of [
        { ...good, host: "" },
        { ...good, port: 0 },
        { ...good, port: 65536 },
        { ...good, verified: "no" },
        { ...good, reason: 5 },
        { ...good, reason: "x".repeat(1001) },
        { ...good, extra: 1 },
        { push: "address_check", host: "h", port: 1 },
      ]
    ) {
      assert.throws(() => parsePush(frame), ProtocolError, JSON.stringify(frame));
    }
  });
});
