import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from './fault-proxy.js';
import { startLatencyProxy } from './latency-proxy.js';

// Latency numbers rest on these proxies (the bench's TCP one, and the tests' HTTP fault proxy): check that
// both delay what they say they do, the same way.
let upstream: ReturnType<typeof createServer>;
let proxy: { endpoint: string; latencyMs: number; connections: number; close(): Promise<void> };

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(`${req.method} ${req.url}`));
  });
  await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
});

afterAll(async () => {
  await new Promise((done) => upstream.close(done));
});

/** One request through the proxy on `agent`; resolves with the body and the milliseconds it took. */
function timed(agent: Agent, path: string, method = 'GET'): Promise<{ body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${proxy.endpoint}${path}`, { method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ body, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(method === 'PUT' ? 'payload' : undefined);
  });
}

const upstreamUrl = () => `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
describe.each([
  ['the fault proxy (HTTP)', () => startFaultProxy(upstreamUrl(), { latencyMs: 120 })],
  ['the latency proxy (TCP)', () => startLatencyProxy(upstreamUrl(), 120)],
])('%s as a latency injector', (_name, start) => {
  beforeAll(async () => {
    proxy = await start();
  });
  afterAll(() => proxy.close());

  it('delays every response by latencyMs, and a new connection\'s first one by twice that (the handshake)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = proxy.connections;
    const first = await timed(agent, '/bucket/a.jpg');
    const second = await timed(agent, '/bucket/b.jpg', 'PUT');
    agent.destroy();
    expect(first.body).toBe('GET /bucket/a.jpg');
    expect(second.body).toBe('PUT /bucket/b.jpg');
    expect(first.ms).toBeGreaterThanOrEqual(235);
    expect(second.ms).toBeGreaterThanOrEqual(115);
    // Generous: the machine is shared, but a second handshake delay would put it past 240 ms.
    expect(second.ms).toBeLessThan(first.ms);
    expect(proxy.connections - before).toBe(1);
  });

  it('delays requests side by side, not one after another', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const started = performance.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => timed(agent, `/bucket/p${i}.jpg`)));
    agent.destroy();
    expect(performance.now() - started).toBeLessThan(8 * 120);
  });

  it('adds nothing at latencyMs 0', async () => {
    proxy.latencyMs = 0;
    const agent = new Agent({ keepAlive: true });
    const { ms } = await timed(agent, '/bucket/c.jpg');
    agent.destroy();
    proxy.latencyMs = 120;
    expect(ms).toBeLessThan(100);
  });
});
