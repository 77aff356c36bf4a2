import { afterEach, describe, expect, it } from 'vitest';
import { holdSignal, type HeldSignal } from '../../../src/cli/args.js';

describe('holdSignal', () => {
  let held: HeldSignal | undefined;
  afterEach(() => held?.release());

  it('answers a signal that came before the service was up once, when it says how', () => {
    held = holdSignal('SIGUSR1');
    process.emit('SIGUSR1', 'SIGUSR1');
    process.emit('SIGUSR1', 'SIGUSR1');
    const calls: string[] = [];
    held.actWith(() => calls.push('reopen'));
    expect(calls).toEqual(['reopen']);
    process.emit('SIGUSR1', 'SIGUSR1');
    expect(calls).toEqual(['reopen', 'reopen']);
  });

  it('answers nothing at the start when no signal came, and stops listening when released', () => {
    const before = process.listenerCount('SIGHUP');
    held = holdSignal('SIGHUP');
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    const calls: string[] = [];
    held.actWith(() => calls.push('reload'));
    expect(calls).toEqual([]);
    held.release();
    expect(process.listenerCount('SIGHUP')).toBe(before);
    held = undefined;
  });
});
