import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests spawn the built CLI and a loopback S3 server; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The AWS SDK prints an eight-line notice about its own future Node requirement in every process that
    // loads it (S3, Lambda and deploy tests, and the CLIs they spawn, which inherit this env). We support
    // Node 20 on purpose (package.json engines), so it is noise here; the CLI turns it off the same way.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // Integration tests run the built CLI: rebuild dist/ first when src/ is newer.
    globalSetup: ['test/helpers/global-setup.ts'],
    // In CI, also a machine-readable result, from which .ci/run prints the plain "N passed, N failed" line.
    ...(process.env['CI'] ? { reporters: ['default', 'json'], outputFile: { json: '.ci/test-results.json' } } : {}),
  },
});
