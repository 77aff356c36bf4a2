/**
 * Rounds of one synchronous operation in this process (a disk hit, an index lookup): CPU, wall
 * time and page faults per operation around a loop over its inputs, and the line that reports
 * several rounds as a median and a range. Used by disk-first-touch.ts and index-lookup.ts.
 */
import { fixed, median } from './bench-lib.js';

/** Minor and major page faults of this process so far (getrusage). */
export function pageFaults(): number {
  const r = process.resourceUsage();
  return r.minorPageFault + r.majorPageFault;
}

/** One round, per operation. */
export interface OpRound {
  /** CPU time (user + system) in ns. */
  cpuNs: number;
  wallNs: number;
  faults: number;
}

/**
 * Runs `op` on each of `inputs` in turn and measures the loop. `op` answers a number (bytes read,
 * headers touched) that is summed into `total`, so the caller can check that the work was done
 * and the loop is not optimised into nothing.
 */
export function measureRound<T>(inputs: readonly T[], op: (input: T) => number): OpRound & { total: number } {
  let total = 0;
  const f0 = pageFaults();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const input of inputs) total += op(input);
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(c0);
  const n = inputs.length;
  return { cpuNs: ((cpu.user + cpu.system) * 1000) / n, wallNs: wall / n, faults: (pageFaults() - f0) / n, total };
}

export interface RoundsLine {
  /** What one operation is called: "read", "lookup". */
  per: string;
  /** Times in µs (one decimal) or ns (whole). */
  unit: 'µs' | 'ns';
  /** Also the wall time (default false: CPU only). */
  wall?: boolean;
}

/** `label: CPU <median> <unit> a <per> (<min>–<max>)[, wall <median> <unit> (<min>–<max>)], page faults <median> a <per>`. */
export function describeRounds(label: string, rounds: readonly OpRound[], line: RoundsLine): string {
  const scale = line.unit === 'µs' ? 1000 : 1;
  const digits = line.unit === 'µs' ? 1 : 0;
  const time = (values: number[]) => fixed(median(values) / scale, digits);
  const range = (values: number[]) => `(${fixed(Math.min(...values) / scale, digits)}–${fixed(Math.max(...values) / scale, digits)})`;
  const cpu = rounds.map((r) => r.cpuNs);
  const parts = [`CPU ${time(cpu)} ${line.unit} a ${line.per} ${range(cpu)}`];
  if (line.wall === true) {
    const wall = rounds.map((r) => r.wallNs);
    parts.push(`wall ${time(wall)} ${line.unit} ${range(wall)}`);
  }
  parts.push(`page faults ${fixed(median(rounds.map((r) => r.faults)), 3)} a ${line.per}`);
  return `${label}: ${parts.join(', ')}`;
}
