import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no sockets, no child processes) and
// `integration` (real servers on loopback ports, real files, real sharp).
// The anycast issue adds `lab` (real BIRD in network namespaces).
export default defineConfig({
  // This file lives in test/ to keep the top level to what DESIGN.md fixes; paths are from the repo root.
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Integration suites start servers and run sharp: two cores, so one file at a time per worker.
          fileParallelism: false,
        },
      },
    ],
  },
});
