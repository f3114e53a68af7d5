import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request seen by the proxy, path-style: `/<bucket>/<key>?<query>`. */
export interface ProxiedRequest {
  /** Order of arrival, from 0. */
  seq: number;
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  /** Which S3 operation, as far as the tests care. */
  op: 'list' | 'get' | 'head' | 'put' | 'other';
  /** The status the client received (undefined while in flight, or when the connection was cut). */
  status?: number;
  /** Set when the proxy answered or broke the request itself instead of the server. */
  fault?: Fault['kind'];
}

export type Fault =
  /** Answer with an S3 error document instead of forwarding. */
  | { kind: 'error'; status: number; code: string; message?: string; headers?: Record<string, string>; extra?: Record<string, string> }
  /** Forward, then send the headers and only part of the body before cutting the connection. */
  | { kind: 'cut-response'; fraction?: number }
  /** Read part of the request body, then cut the connection; nothing reaches the server. */
  | { kind: 'cut-request' }
  /** Forward after a pause (to make a run slow enough to kill halfway). */
  | { kind: 'delay'; ms: number };

export type FaultRule = (request: ProxiedRequest) => Fault | undefined;

export interface FaultProxy {
  endpoint: string;
  requests: ProxiedRequest[];
  rule: FaultRule | undefined;
  /**
   * Extra delay before every response (0: none), to stand in for a remote S3's round trip. The first
   * request on a new connection waits twice as long: a TCP handshake costs one more round trip, which is
   * what keep-alive saves.
   */
  latencyMs: number;
  /** Client connections opened so far (to see whether keep-alive reuses them). */
  connections: number;
  /** Called when a request completes with a status (for tests that act on progress). */
  onComplete: ((request: ProxiedRequest) => void) | undefined;
  /** PUTs the server accepted (status 200), optionally for one bucket. */
  successfulPuts(bucket?: string): ProxiedRequest[];
  reset(): void;
  close(): Promise<void>;
}

function classify(method: string, key: string, query: URLSearchParams): ProxiedRequest['op'] {
  if (method === 'GET' && key === '' && query.get('list-type') === '2') return 'list';
  if (method === 'GET' && key !== '') return 'get';
  if (method === 'HEAD') return 'head';
  if (method === 'PUT' && key !== '') return 'put';
  return 'other';
}

function errorDocument(fault: Extract<Fault, { kind: 'error' }>, resource: string): string {
  const extra = Object.entries(fault.extra ?? {}).map(([k, v]) => `<${k}>${v}</${k}>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>${fault.message ?? fault.code}</Message>${extra}<Resource>${resource}</Resource><RequestId>FAULT</RequestId></Error>`;
}

/**
 * A loopback HTTP proxy in front of the S3 server: records every request and, by `rule`, answers some
 * with errors or breaks them. Clients point `--endpoint` at it; SigV4 still verifies because the Host
 * header is passed through unchanged.
 */
export async function startFaultProxy(upstream: string, options: { latencyMs?: number } = {}): Promise<FaultProxy> {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true });
  let seq = 0;
  const proxy: FaultProxy = {
    endpoint: '',
    requests: [],
    rule: undefined,
    latencyMs: options.latencyMs ?? 0,
    connections: 0,
    onComplete: undefined,
    successfulPuts: (bucket) => proxy.requests.filter((r) => r.op === 'put' && r.status === 200 && !r.fault && (bucket === undefined || r.bucket === bucket)),
    reset() {
      proxy.requests.length = 0;
      proxy.rule = undefined;
      proxy.onComplete = undefined;
      proxy.latencyMs = options.latencyMs ?? 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const complete = (entry: ProxiedRequest, status: number | undefined) => {
    entry.status = status;
    if (status !== undefined) proxy.onComplete?.(entry);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest, fault: Fault | undefined) => {
    const upstreamRequest = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upstreamResponse) => {
        const status = upstreamResponse.statusCode ?? 502;
        if (fault?.kind === 'cut-response') {
          const length = Number(upstreamResponse.headers['content-length'] ?? 0);
          const limit = Math.floor(length * (fault.fraction ?? 0.5));
          res.writeHead(status, upstreamResponse.headers);
          let sent = 0;
          upstreamResponse.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const part = chunk.subarray(0, limit - sent);
            sent += part.length;
            res.write(part);
            if (sent >= limit) {
              complete(entry, undefined);
              // Let the partial body reach the client, then break the connection mid-body.
              setTimeout(() => res.socket?.destroy(), 20);
              upstreamResponse.destroy();
            }
          });
          return;
        }
        res.writeHead(status, upstreamResponse.headers);
        upstreamResponse.pipe(res);
        upstreamResponse.on('end', () => complete(entry, status));
      },
    );
    upstreamRequest.on('error', () => res.socket?.destroy());
    req.pipe(upstreamRequest);
  };

  /** Sockets that have carried a request already: later requests on them pay no handshake. */
  const used = new WeakSet<object>();
  const server = createServer((req, res) => {
    const delay = proxy.latencyMs * (used.has(req.socket) ? 1 : 2);
    used.add(req.socket);
    if (delay > 0) setTimeout(() => handle(req, res), delay);
    else handle(req, res);
  });
  server.on('connection', () => (proxy.connections += 1));

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const method = req.method ?? 'GET';
    const entry: ProxiedRequest = { seq: seq++, method, bucket: decodeURIComponent(bucket), key, query: url.searchParams, headers: req.headers, op: classify(method, key, url.searchParams) };
    proxy.requests.push(entry);
    const fault = proxy.rule?.(entry);
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'error') {
      req.resume();
      req.on('end', () => {
        const body = errorDocument(fault, url.pathname);
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...fault.headers });
        res.end(method === 'HEAD' ? undefined : body);
        complete(entry, fault.status);
      });
      return;
    }
    if (fault?.kind === 'cut-request') {
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 0) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    if (fault?.kind === 'delay') {
      setTimeout(() => forward(req, res, entry, undefined), fault.ms).unref();
      return;
    }
    forward(req, res, entry, fault);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
