// Resume wall time at +50 ms: one full run, then reruns alternating two CLI builds (bin paths in argv).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';
const root = '/work/wt/resume-rtt/';
const load = (p) => tsImport(join(root, p), import.meta.url);
const { startS3Server, testClient, s3Env, putObject } = await load('test/helpers/s3-server.ts');
const { startLatencyProxy } = await load('test/helpers/latency-proxy.ts');
const [binA, binB] = process.argv.slice(2);
const server = await startS3Server(['src', 'dst']);
const proxy = await startLatencyProxy(server.endpoint);
const client = testClient(server.endpoint);
const env = s3Env({ AWS_REGION: 'us-east-1' });
const dir = '/work/main/fixtures/images';
for (const f of readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f))) await putObject(client, 'src', `in/${f}`, readFileSync(join(dir, f)));
const run = (bin) => { const t = performance.now(); execFileSync(process.execPath, [bin, 's3://src/in/', '--out', 's3://dst/out/', '--endpoint', proxy.endpoint, '--quiet'], { env, stdio: 'ignore' }); return performance.now() - t; };
proxy.latencyMs = 50;
run(binA);
const a = [], b = [];
for (let i = 0; i < 7; i++) { a.push(run(binA)); b.push(run(binB)); }
const med = (x) => [...x].sort((p, q) => p - q)[3].toFixed(0);
import("node:fs").then(({ writeFileSync }) => writeFileSync("/tmp/cs/resume-result.txt", `resume at +50 ms, images: A median ${med(a)} ms [${a.map((x) => x.toFixed(0))}]  B median ${med(b)} ms [${b.map((x) => x.toFixed(0))}]\n`));
await server.stop(); await proxy.stop?.();
setTimeout(() => process.exit(0), 200);
