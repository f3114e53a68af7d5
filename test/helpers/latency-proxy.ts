import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A loopback TCP proxy that stands in for a distant S3: see startLatencyProxy. */
export interface LatencyProxy {
  endpoint: string;
  /** Added to every response, and once more to a new connection's first request; read per chunk, so it can change between runs. */
  latencyMs: number;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/**
 * One direction of a connection, delayed: chunks leave in the order they came, each `delay` after it
 * came, from one timer at a time. Backpressure is not relayed: on loopback the reader keeps up.
 */
function delayLine(to: Socket, delayOf: () => number): { push(chunk: Buffer | null): void } {
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const send = (chunk: Buffer | null) => (chunk === null ? to.end() : to.write(chunk));
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) send(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.due - now);
  };
  return {
    push(chunk) {
      const delay = delayOf();
      if (delay <= 0 && queue.length === 0) return send(chunk);
      queue.push({ due: performance.now() + delay, chunk });
      timer ??= setTimeout(drain, delay);
    },
  };
}

/**
 * A loopback proxy that adds a round trip's latency at the TCP level: every byte from the server reaches
 * the client `latencyMs` late, so every response does, and a new connection's first bytes to the server
 * wait `latencyMs` too (the handshake a real connection pays), so its first request costs twice. The bytes
 * themselves pass unparsed: unlike an HTTP proxy (fault-proxy.ts), which parses and re-sends every request
 * and response, it costs almost no CPU, which matters when it shares two cores with the CLI it measures,
 * as a real network would not. The same semantics as fault-proxy.ts's latencyMs.
 */
export async function startLatencyProxy(upstream: string, latencyMs = 0): Promise<LatencyProxy> {
  const target = new URL(upstream);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    proxy.connections += 1;
    const server = connect(Number(target.port), target.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
    }
    let handshake = true;
    const toServer = delayLine(server, () => (handshake ? proxy.latencyMs : 0));
    const toClient = delayLine(client, () => proxy.latencyMs);
    client.on('data', (chunk: Buffer) => {
      toServer.push(chunk);
      handshake = false;
    });
    client.on('end', () => toServer.push(null));
    server.on('data', (chunk: Buffer) => toClient.push(chunk));
    server.on('end', () => toClient.push(null));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
  });
  const proxy: LatencyProxy = {
    endpoint: '',
    latencyMs,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
