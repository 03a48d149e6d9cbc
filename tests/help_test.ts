/**
 * peer/help.ts with the real command table: every command has `help <command>` with an
 * example that runs that command; the list fits 80 columns and narrower terminals without a
 * word cut in two; one command's help fits too.
 */

import assert from "node:assert/strict";
import { splitWords } from "../lib/shell_words.ts";
import {
  COMMAND_TABLE,
  type CommandContext,
  COMMANDS,
  helpText,
  resolveCommand,
  usageOf,
} from "../peer/commands.ts";
import { commandHelp, DEFAULT_WIDTH, helpWidth, wrapWords } from "../peer/help.ts";
import type { ClientSession } from "../peer/session.ts";

/** `help <words>` on a terminal `columns` wide (undefined: a pipe), as the shell prints it. */
async function help(words: string[], columns?: number): Promise<string> {
  const context: CommandContext = { session: {} as ClientSession, quit() {}, columns };
  return (await COMMANDS.get("help")!.run(context, words)).text;
}

/** The widths people's terminals have, and narrower than help lays out for. */
const WIDTHS = [200, 120, 100, 80, 72, 60, 50, 45, 40, 30, 10, 1];

Deno.test("help: the width is the terminal's, 80 on a pipe, 40 at the least", () => {
  assert.equal(helpWidth(undefined), DEFAULT_WIDTH);
  assert.equal(DEFAULT_WIDTH, 80);
  assert.equal(helpWidth(0), 80);
  assert.equal(helpWidth(-5), 80);
  assert.equal(helpWidth(132), 132);
  assert.equal(helpWidth(20), 40);
});

Deno.test("help <command>: every command has usage, a description and an example that runs it", async () => {
  for (const command of COMMAND_TABLE) {
    assert.ok(command.example, `${command.name} has no example`);
    // the example is a line the shell takes as this command with the right arguments
    assert.equal(resolveCommand(splitWords(command.example)).command, command, command.example);
    const [first] = command.name.split(" ");
    // a two-word command is named in one quoted word: help "logout --all"
    const text = await help([command.name]);
    assert.ok(
      text.includes(`usage: ${usageOf(command)}`),
      `help for ${command.name} lacks its usage:\n${text}`,
    );
    assert.ok(text.includes(`example: ${command.example}`), text);
    assert.ok(text.includes(wrapWords(command.summary, 80)[0]), text);
    // the first word alone names it too (`help logout` shows both logouts)
    assert.ok((await help([first])).includes(`usage: ${usageOf(command)}`), first);
  }
  assert.match(await help(["list_requests"]), /also typed as: list_requests/);
});

Deno.test("help <command>: unknown commands get a suggestion or none", async () => {
  const context: CommandContext = { session: {} as ClientSession, quit() {} };
  await assert.rejects(
    COMMANDS.get("help")!.run(context, ["dwonload_file"]),
    /unknown command "dwonload_file"; did you mean "download_file"\? type help for the list/,
  );
  await assert.rejects(
    COMMANDS.get("help")!.run(context, ["frobnicate"]),
    /^UserError: unknown command "frobnicate"; type help for the list$/,
  );
});

Deno.test("help: the list fits every width from 40 columns up, no word cut in two", async () => {
  const words = (text: string) => text.split(/\s+/).filter((word) => word !== "");
  // every word the list may show, once each: the header, each usage and each summary
  const expected = [
    "COMMAND",
    "WHAT",
    "IT",
    "DOES",
    ...COMMAND_TABLE.flatMap((command) => [...words(usageOf(command)), ...words(command.summary)]),
  ];
  for (const columns of WIDTHS) {
    const width = helpWidth(columns);
    const text = await help([], columns);
    assert.equal(text, helpText(width));
    for (const line of text.split("\n")) {
      assert.ok(line.length <= width, `${columns} columns: ${JSON.stringify(line)}`);
      assert.equal(line, line.trimEnd(), "a line ends in blanks");
    }
    // the same words in the same order: none cut, none lost
    assert.deepEqual(words(text), expected, `at ${columns} columns`);
    // each command starts a line of its own, at the left margin
    for (const command of COMMAND_TABLE) {
      assert.ok(
        text.split("\n").some((line) => line.startsWith(usageOf(command).split(" ")[0])),
        `${command.name} at ${columns} columns`,
      );
    }
  }
});

Deno.test("help <command>: fits every width from 40 columns up; the example is never wrapped", async () => {
  for (const command of COMMAND_TABLE) {
    for (const columns of WIDTHS) {
      const width = helpWidth(columns);
      const lines = (await help([command.name], columns)).split("\n");
      for (const line of lines) {
        assert.ok(line.length <= width, `${command.name} at ${columns}: ${JSON.stringify(line)}`);
      }
      assert.ok(
        lines.includes(`example: ${command.example}`) || lines.includes(command.example!),
        `${command.name} at ${columns}: ${lines.join("\n")}`,
      );
    }
  }
  // too wide beside "example:", it stands alone on the next line
  assert.deepEqual(
    commandHelp({ usage: "x", summary: "y", example: "a".repeat(35) }, 40).split("\n").slice(-2),
    ["example:", "a".repeat(35)],
  );
});

Deno.test("wrapWords: at blanks only; a word longer than the line stands alone", () => {
  assert.deepEqual(wrapWords("one two three four", 9), ["one two", "three", "four"]);
  assert.deepEqual(wrapWords("  spaced\tout\n words ", 80), ["spaced out words"]);
  assert.deepEqual(wrapWords("a incomprehensibilities b", 5), ["a", "incomprehensibilities", "b"]);
  assert.deepEqual(wrapWords("", 10), []);
  assert.deepEqual(wrapWords("exactly10c next", 10), ["exactly10c", "next"]);
});
