/**
 * Schema pieces shared by every command's configuration: listen addresses, byte sizes and
 * durations written the way operators write them (`512MiB`, `30s`).
 */
import { z } from 'zod';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse `1024`, `64KiB`, `1.5 GB` into bytes. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

/** Parse `250ms`, `30s`, `5m`, `1h`, or a number of milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/** A byte size: a number or a string with a unit (B, KB, MB, GB, KiB, MiB, GiB). */
export const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a byte size such as 1048576 or "64MiB", got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

/** A byte size of at least one byte: a budget or a bound that 0 would make useless. */
export const positiveByteSize = byteSize.pipe(z.number().positive());

/** A duration: milliseconds as a number, or a string with a unit (ms, s, m, h). */
export const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 5000 or "5s", got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parse `host:port`, `[::1]:port` or a bare port (loopback). */
export function parseListen(value: string | number): ListenAddress | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value < 65536 ? { host: '127.0.0.1', port: value } : undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim()) ?? /^()()(\d{1,5})$/.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** A listen address: `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:80` or a port number. */
export const listenAddress = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const a = parseListen(v);
  if (a === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected "host:port" or a port number, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return a;
});
