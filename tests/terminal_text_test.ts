import assert from "node:assert/strict";
import { jsonTerminalSafe, terminalLine, terminalSafe } from "../lib/terminal_text.ts";

Deno.test("terminalSafe: what a terminal would act on is written out, the rest kept", async (t) => {
  await t.step("table", () => {
    const cases: [string, string][] = [
      ["plain name.iso", "plain name.iso"],
      ["two\nlines", "two\nlines"],
      ["clear\u001b[2J", "clear\\u001b[2J"],
      ["cr\rover", "cr\\u000dover"],
      ["tab\there", "tab\\u0009here"],
      ["del\u007f", "del\\u007f"],
      ["c1\u009b31m", "c1\\u009b31m"],
      ["gnp\u202e.exe", "gnp\\u202e.exe"],
      ["isolate\u2066x\u2069", "isolate\\u2066x\\u2069"],
      ["日本語 ✓", "日本語 ✓"],
    ];
    for (const [input, expected] of cases) assert.equal(terminalSafe(input), expected);
  });
  await t.step("any text: nothing unsafe is left, and safe text is untouched", () => {
    // deno-lint-ignore no-control-regex
    const unsafe = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
    let x = 7;
    for (let round = 0; round < 3000; round++) {
      const chars: number[] = [];
      for (let i = 0; i < round % 50; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        chars.push(x % 4 === 0 ? x % 0x100 : x % 0x2200);
      }
      const text = String.fromCharCode(...chars);
      const safe = terminalSafe(text);
      assert.ok(!unsafe.test(safe), JSON.stringify(text));
      if (!unsafe.test(text)) assert.equal(safe, text);
    }
  });
  await t.step("JSON lines still parse to the same value", () => {
    const value = { name: "gnp\u202e.exe\u009b\u001b[1m", n: 1 };
    const line = jsonTerminalSafe(JSON.stringify(value));
    assert.ok(!/[\u009b\u202e]/.test(line), line);
    assert.deepEqual(JSON.parse(line), value);
  });
});

Deno.test("terminalLine: one line whatever the text holds", () => {
  assert.equal(terminalLine("a\nerror: forged\x1b[2J"), "a\\nerror: forged\\u001b[2J");
  assert.equal(terminalLine("plain"), "plain");
  assert.equal(terminalLine("\r\n\u202e"), "\\u000d\\n\\u202e");
});
