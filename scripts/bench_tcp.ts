/**
 * The loopback TCP limit for the benchmark, between two Deno processes: `recv` listens on
 * 127.0.0.1 (any port), prints `port <n>`, reads until the sender closes and prints
 * `received <bytes> in <seconds>`; `send <port> <bytes>` writes that many bytes in 256 KiB
 * writes as fast as the socket takes them.
 *
 * @module
 */

const CHUNK = 256 * 1024;

async function receive(): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`port ${listener.addr.port}`);
  const conn = await listener.accept();
  const buffer = new Uint8Array(CHUNK);
  let total = 0;
  let started = 0;
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    if (total === 0) started = performance.now();
    total += n;
  }
  conn.close();
  console.log(`received ${total} in ${(performance.now() - started) / 1000}`);
}

async function send(port: number, bytes: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunk = new Uint8Array(CHUNK).fill(7);
  for (let sent = 0; sent < bytes;) {
    sent += await conn.write(chunk.subarray(0, Math.min(CHUNK, bytes - sent)));
  }
  conn.close();
}

if (import.meta.main) {
  const [mode, port, bytes] = Deno.args;
  if (mode === "recv") await receive();
  else if (mode === "send") await send(Number(port), Number(bytes));
  else {
    console.error("usage: bench_tcp.ts recv | send <port> <bytes>");
    Deno.exit(2);
  }
}
