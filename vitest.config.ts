import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests spawn the built CLI and a loopback S3 server; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration tests run the built CLI: rebuild dist/ first when src/ is newer.
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
