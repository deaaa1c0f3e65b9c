import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Slow suites (long simulation sweeps, 1 GiB round trips) live in test-slow/ and run from
    // scripts/slow, not here: `npm test` must stay well inside CI's budget on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
