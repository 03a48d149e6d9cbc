/**
 * `deno task flood` in small (issue 13): a few flood shapes against a real tracker and a real
 * seeding client, each under its ceiling, the honest user served beside it. The seeder shape
 * offers more connections with good tickets (10 members, none past their own caps) than a
 * serving peer holds: it must hold exactly `MAX_PEER_CONNECTIONS`. The measured run, with
 * the full counts, is `deno task flood` (docs/robustness.md).
 */

import assert from "node:assert/strict";
import { MAX_PEER_CONNECTIONS } from "../peer/serving_caps.ts";
import { runFlood } from "../scripts/flood.ts";

Deno.test("flood, small: the caps hold, memory stays under its ceilings, the honest are served", async () => {
  const offered = MAX_PEER_CONNECTIONS + 44;
  const rows = await runFlood({
    shapes: ["prelogin", "partial", "seeder"],
    connections: { idle: 0, prelogin: 100, partial: 30, maximal: 0, seeder: offered },
    users: 10,
    pieces: 2,
  });
  assert.deepEqual(rows.map((row) => row.shape), ["prelogin", "partial", "seeder"]);
  for (const row of rows) {
    assert.ok(row.pass, JSON.stringify(row));
    assert.ok(row.peak_rss_mib <= row.ceiling_mib);
    assert.ok(row.honest_login_ms !== null && row.honest_download_s !== null);
  }
  const [prelogin, partial, seeder] = rows;
  assert.match(prelogin.note, /16 of 16 announcing 1 MiB closed at once/);
  assert.equal(prelogin.refused, 0);
  assert.equal(partial.refused, 0);
  // the flood's connections were all served up to the cap, and no further
  assert.equal(seeder.held, MAX_PEER_CONNECTIONS);
  assert.equal(seeder.refused, offered - MAX_PEER_CONNECTIONS);
  assert.match(seeder.note, new RegExp(`${MAX_PEER_CONNECTIONS} served`));
});
