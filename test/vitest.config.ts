import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Three projects: `unit` (pure logic, no sockets, no child processes), `integration` (real
// servers on loopback ports, real files, real sharp) and `lab` (real BIRD daemons, edges and
// agents in network namespaces: deploy/lab/; skipped with the reason without root and BIRD).
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
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          environment: 'node',
          // Bringing a lab up takes 10–20 s; a scenario waits for drains, restarts and sessions.
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One lab at a time, in a group of its own (vitest runs groups one after another): its
          // timings must not compete with the unit and integration tests.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
