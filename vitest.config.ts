import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Slow suites run outside `npm test` (which must stay well inside CI's budget on 2 cores):
    // long simulation sweeps (scripts/sim-sweep-ring.sh) and 1 GiB round trips (npm run test:huge).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
