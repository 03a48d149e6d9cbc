/**
 * `deno task build`: compiles main.ts into two standalone executables, `dist/server` and
 * `dist/client`, each with its program name baked in so they take exactly the documented
 * argv (`dist/server <ip> <port>`, `dist/client <client_ip> <client_port> <server_ip>
 * <server_port>`).
 *
 * `deno compile` needs Deno's runtime base ("denort"). It downloads it unless `DENORT_BIN`
 * names a local copy; on a machine without access to Deno's servers, set `DENORT_BIN`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { RUNTIME_FLAGS, TRACKER_RUNTIME_FLAGS } from "./runtime_flags.ts";

/** The permissions the programs need: sockets, their own files, and the environment. */
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/** Modules started as workers at run time. */
const WORKERS = ["peer/piece_writer_worker.ts", "lib/hash_worker.ts"];

/** One executable to build. */
export interface BuildTarget {
  program: "server" | "client";
  output: string;
}

/** The `deno compile` arguments for one target, relative to the project root. */
export function compileArgs(target: BuildTarget): string[] {
  return [
    "compile",
    ...PERMISSIONS,
    ...target.program === "server" ? TRACKER_RUNTIME_FLAGS : RUNTIME_FLAGS,
    // workers are not found by import analysis: embed them by name
    ...WORKERS.flatMap((worker) => ["--include", worker]),
    "--output",
    target.output,
    "main.ts",
    target.program,
  ];
}

/** Why `DENORT_BIN` cannot be used, or undefined when it is unset or names a file. */
export async function denortProblem(path: string | undefined): Promise<string | undefined> {
  if (path === undefined || path === "") return undefined;
  try {
    const info = await Deno.stat(path);
    return info.isFile ? undefined : `DENORT_BIN=${path} is not a file`;
  } catch {
    return `DENORT_BIN=${path} does not exist`;
  }
}

async function build(root: string): Promise<number> {
  const denort = Deno.env.get("DENORT_BIN");
  const problem = await denortProblem(denort);
  if (problem) {
    console.error(`error: ${problem}; point it at a denort executable of this Deno version`);
    return 1;
  }
  console.log(
    denort
      ? `using the compile runtime at DENORT_BIN=${denort}`
      : "downloading the compile runtime (set DENORT_BIN to a local denort to build offline)",
  );
  const targets: BuildTarget[] = [
    { program: "server", output: "dist/server" },
    { program: "client", output: "dist/client" },
  ];
  for (const target of targets) {
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target),
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) {
      console.error(
        `error: deno compile failed for ${target.output}` +
          (denort ? "" : "; without network access set DENORT_BIN to a local denort"),
      );
      return 1;
    }
    console.log(`built ${target.output}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await build(fileURLToPath(new URL("..", import.meta.url))));
