import assert from "node:assert/strict";
import { concatBytes } from "../../lib/bytes.ts";
import { dialTcp, listenTcp, TcpConn } from "../../lib/transport.ts";

/** A connected pair of `TcpConn`s on loopback. */
async function tcpPair(): Promise<[TcpConn, TcpConn, () => void]> {
  const listener = listenTcp("127.0.0.1", 0, { what: "the test", flag: "--port" });
  const accepted = listener.accept();
  const dialled = await dialTcp("127.0.0.1", (listener.addr as Deno.NetAddr).port);
  return [dialled, new TcpConn(await accepted), () => listener.close()];
}

Deno.test("TcpConn.chunks() delivers a large transfer whole, then ends at the peer's half-close", async () => {
  const [a, b, stop] = await tcpPair();
  try {
    const sent = crypto.getRandomValues(new Uint8Array(60_000));
    const big = concatBytes(Array.from({ length: 20 }, () => sent)); // 1.2 MB
    const writing = a.write(big).then(() => a.socket.closeWrite());
    const received: Uint8Array[] = [];
    for await (const chunk of b.chunks()) received.push(chunk.slice());
    await writing;
    assert.deepEqual(concatBytes(received), big);
    // The reader may still answer a peer that only half-closed.
    await b.write(new TextEncoder().encode("bye\n"));
    const answer = await a.chunks()[Symbol.asyncIterator]().next();
    assert.equal(new TextDecoder().decode(answer.value), "bye\n");
  } finally {
    a.close();
    b.close();
    stop();
  }
});

Deno.test("TcpConn.chunks() is finished once its reader breaks out of the loop", async () => {
  const [a, b, stop] = await tcpPair();
  try {
    const chunks = b.chunks();
    await a.write(new TextEncoder().encode("one"));
    for await (const _ of chunks) break;
    await a.write(new TextEncoder().encode("two"));
    const next = await chunks[Symbol.asyncIterator]().next();
    assert.equal(next.done, true);
  } finally {
    a.close();
    b.close();
    stop();
  }
});
