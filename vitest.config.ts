import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // bench/ reaches the package through package.json's private imports
    // ("#iomux/*" -> dist/*); its tests run it on the sources, as tsconfig.json
    // type-checks it.
    alias: [{ find: /^#iomux\/(.*)$/, replacement: `${fileURLToPath(new URL('./src/', import.meta.url))}$1` }],
  },
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
