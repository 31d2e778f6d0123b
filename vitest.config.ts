import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Suites use real kernel objects and loopback sockets: keep them in
    // separate processes so a leak check sees only its own fds.
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
