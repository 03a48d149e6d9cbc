import assert from "node:assert/strict";
import { RATE_WINDOW_BUCKETS, RateWindow, TransferRates } from "../peer/rate_window.ts";

Deno.test("rate window", async (t) => {
  await t.step("nothing sampled yet reads 0", () => {
    assert.equal(new RateWindow().bytesPerSecond(1_000, 10_000), 0);
  });

  await t.step("a steady counter reads its rate", () => {
    const window = new RateWindow();
    for (let second = 0; second <= 20; second++) window.record(second * 1_000_000, second * 1000);
    assert.equal(window.bytesPerSecond(20_500_000, 20_500), 1_000_000);
  });

  await t.step("only the last seconds count: a burst long ago is forgotten", () => {
    const window = new RateWindow();
    window.record(0, 0);
    window.record(100_000_000, 1000); // a burst in the first second
    for (let second = 2; second <= 12; second++) {
      window.record(100_000_000 + (second - 1) * 1000, second * 1000);
    }
    const rate = window.bytesPerSecond(100_000_000 + 11_000, 12_000);
    assert.ok(rate > 900 && rate < 1100, `rate ${rate}`);
  });

  await t.step("a stopped transfer falls to 0 within the window", () => {
    const window = new RateWindow();
    for (let second = 0; second <= 10; second++) window.record(second * 1000, second * 1000);
    for (let second = 11; second <= 11 + RATE_WINDOW_BUCKETS + 1; second++) {
      window.record(10_000, second * 1000);
    }
    assert.equal(window.bytesPerSecond(10_000, (12 + RATE_WINDOW_BUCKETS) * 1000), 0);
  });

  await t.step("samples within one second keep the first: the window is not shortened", () => {
    const window = new RateWindow();
    window.record(0, 0);
    for (let ms = 10; ms < 1000; ms += 10) window.record(ms * 1000, ms);
    assert.equal(window.bytesPerSecond(2_000_000, 2000), 1_000_000);
  });

  await t.step("without samples for a while, the newest old one is the start", () => {
    const window = new RateWindow();
    window.record(0, 0);
    assert.equal(window.bytesPerSecond(60_000, 60_000), 1000);
  });

  await t.step("both directions", () => {
    const rates = new TransferRates();
    rates.record({ bytesReceived: 0, bytesServed: 0 }, 0);
    assert.deepEqual(rates.read({ bytesReceived: 4000, bytesServed: 2000 }, 2000), {
      down: 2000,
      up: 1000,
    });
  });
});
