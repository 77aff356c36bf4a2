import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Four projects: `unit` (pure logic, no sockets, no child processes), `integration` (real
// servers on loopback ports, real files, real sharp), `lab` (real BIRD daemons, edges and
// agents in network namespaces: deploy/lab/; skipped with the reason without root and BIRD) and
// `browser` (headless Chromium on the demo over HTTPS; skipped with the reason without chromium,
// required under CI=true). .ci/run's second pass (another Node.js major) leaves out the last two:
// slow, and not about Node's version.
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
      {
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          // After the others, like the lab: a browser's timings need the cores.
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
