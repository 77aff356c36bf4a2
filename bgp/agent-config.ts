/**
 * The agent's configuration schema (`anycdn bgp agent --config FILE`), usually rendered from the
 * inventory (node-files.ts). Every wait is bounded; the type is inferred; unknown keys are refused.
 */
import { z } from 'zod';
import { duration, listenAddress } from '../src/config/common.js';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL');

const filePath = z.string().min(1).max(4096);

export const agentConfigSchema = z
  .strictObject({
    /** This node's PoP and name, in logs and metrics. */
    pop: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - (1–32)'),
    node: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _, . and - (1–64)'),
    health: z.strictObject({
      /** The edge's health endpoint, on loopback: http://127.0.0.1:80/_cdn/healthz. */
      url: httpUrl,
      /** Time between the starts of two probes. Default 1 s. */
      interval: duration.pipe(z.number().min(100, 'at least 100ms').max(3_600_000)).default(1000),
      /** A probe without a complete answer in this time fails. Default 1 s. */
      timeout: duration.pipe(z.number().min(10, 'at least 10ms').max(60_000)).default(1000),
      /** Successes in a row before announcing. Default 3. */
      rise: z.number().int().min(1).max(100).default(3),
      /** Failures in a row before withdrawing. Default 2. */
      fall: z.number().int().min(1).max(100).default(2),
      /**
       * The agent not having run for longer than this (its host or process stopped or starved)
       * makes the edge's health unknown: withdrawn until `rise` new passing probes. Default
       * fall × interval, the time in which a hung edge would have been withdrawn had the agent
       * been running (`stallLimit()`).
       */
      stallLimit: duration.pipe(z.number().max(3_600_000)).optional(),
    }),
    damping: z
      .strictObject({
        /** More announce/withdraw changes than this within `window` hold the node withdrawn. Default 4. */
        maxFlips: z.number().int().min(1).max(1000).default(4),
        window: duration.pipe(z.number().min(1000, 'at least 1s')).default(300_000),
        /** How long a flapping node stays withdrawn. Default 10 min. */
        holdDown: duration.default(600_000),
      })
      .prefault({}),
    /** How long the graceful-shutdown community (RFC 8326) is announced before a planned withdrawal. Default 5 s; 0 skips it. */
    gracefulShutdown: duration.pipe(z.number().max(600_000)).default(5000),
    bird: z.strictObject({
      /** BIRD's control socket (`bird -s`). */
      socket: filePath,
      /** The announce include bird.conf reads; the agent replaces it atomically. */
      announceFile: filePath,
      /** Longest wait for BIRD to connect and answer one command. Default 5 s. */
      commandTimeout: duration.pipe(z.number().min(10).max(120_000)).default(5000),
    }),
    /** Where to serve Prometheus metrics. Default none (no listener). */
    metrics: listenAddress.optional(),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .superRefine((config, ctx) => {
    if (config.health.timeout > config.health.interval) {
      ctx.addIssue({ code: 'custom', path: ['health', 'timeout'], message: `must be at most health.interval (${config.health.interval} ms): probes run one at a time` });
    }
    if (config.health.stallLimit !== undefined && config.health.stallLimit < config.health.interval) {
      ctx.addIssue({ code: 'custom', path: ['health', 'stallLimit'], message: `must be at least health.interval (${config.health.interval} ms): an agent waiting for its next probe is not stalled` });
    }
  });

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** How long the agent may go without running before the edge's health is unknown, in ms. */
export function stallLimit(health: AgentConfig['health']): number {
  return health.stallLimit ?? health.fall * health.interval;
}
