// Runs s3rver in its own process. s3rver encrypts listing continuation tokens with DES, which OpenSSL 3
// (Node >= 17) only offers through the legacy provider: start this file with `node --openssl-legacy-provider`,
// or any listing longer than one page answers 500 ERR_OSSL_EVP_UNSUPPORTED.
//
// usage: node --openssl-legacy-provider s3-server-process.mjs <directory> [bucket...]
// Prints one JSON line {"port": n} once it listens on 127.0.0.1; exits when stdin closes (its parent died).
import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
if (!directory) {
  process.stderr.write('usage: s3-server-process.mjs <directory> [bucket...]\n');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name })),
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.resume();
process.stdin.on('end', stop);
