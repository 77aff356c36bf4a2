/**
 * Asset changes whose purge could not be logged: owed, retried in the background until the log
 * takes them, paid at once by a repeated request, and bounded (past MAX_OWED one purge of
 * everything is owed instead).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { Purge } from '../../../src/purge/purge-request.js';
import { ChangePurges, MAX_OWED, type PurgeAppender } from '../../../origin/purge/change-purges.js';
import type { PurgeEntry, PurgeSource } from '../../../origin/purge/purge-log-format.js';

/** A log whose appends fail while `failing`, recording what it took. */
function fakeLog(): PurgeAppender & { failing: boolean; taken: { purge: Purge; source: PurgeSource }[] } {
  const log = {
    failing: false,
    taken: [] as { purge: Purge; source: PurgeSource }[],
    append(purge: Purge, source: PurgeSource): Promise<PurgeEntry> {
      if (log.failing) return Promise.reject(new Error('ENOSPC'));
      log.taken.push({ purge, source });
      const seq = log.taken.length;
      return Promise.resolve({ seq, id: `log-${seq}`, time: 0, source, ...purge });
    },
  };
  return log;
}

afterEach(() => void vi.useRealTimers());

describe('ChangePurges', () => {
  it('logs a change purge and owes nothing when the log takes it', async () => {
    const log = fakeLog();
    const changes = new ChangePurges(log, silentLogger(), 1000);
    const entry = await changes.purge('docs/index.html', 'upload');
    expect(entry.id).toBe('log-1');
    expect(log.taken[0]!.purge.urls).toEqual([{ path: '/docs/index.html' }, { path: '/docs/' }, { path: '/docs' }]);
    expect([changes.owes('docs/index.html'), changes.size]).toEqual([false, 0]);
  });

  it('a failed append is a 503 naming the stored path, and the purge is owed', async () => {
    const log = fakeLog();
    log.failing = true;
    const changes = new ChangePurges(log, silentLogger(), 1000);
    const err = await changes.purge('a/b.jpg', 'delete').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'purge_not_logged', status: 503, headers: { 'retry-after': '5' } });
    expect((err as Error).message).toContain('a/b.jpg is stored');
    expect([changes.owes('a/b.jpg'), changes.owes('a/c.jpg'), changes.size]).toEqual([true, false, 1]);
    changes.close();
  });

  it('retries owed purges in the background until the log takes them, with their sources', async () => {
    vi.useFakeTimers();
    const log = fakeLog();
    log.failing = true;
    const changes = new ChangePurges(log, silentLogger(), 1000);
    await changes.purge('x.css', 'upload').catch(() => undefined);
    await changes.purge('y.css', 'delete').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(1000);
    await changes.settled();
    expect([log.taken.length, changes.size]).toEqual([0, 2]); // still failing: still owed
    log.failing = false;
    await vi.advanceTimersByTimeAsync(1000);
    await changes.settled();
    expect(log.taken.map((t) => [t.purge.urls, t.source])).toEqual([
      [[{ path: '/x.css' }], 'upload'],
      [[{ path: '/y.css' }], 'delete'],
    ]);
    expect(changes.size).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(log.taken.length).toBe(2); // nothing owed: no more appends
  });

  it('a repeated request pays its path at once', async () => {
    const log = fakeLog();
    log.failing = true;
    const changes = new ChangePurges(log, silentLogger(), 60_000);
    await changes.purge('p.png', 'upload').catch(() => undefined);
    log.failing = false;
    expect((await changes.purge('p.png', 'upload')).seq).toBe(1);
    expect(changes.owes('p.png')).toBe(false);
    changes.close();
  });

  it(`past ${MAX_OWED} owed paths owes one purge of everything instead`, async () => {
    const log = fakeLog();
    log.failing = true;
    const changes = new ChangePurges(log, silentLogger(), 60_000);
    for (let i = 0; i <= MAX_OWED; i++) await changes.purge(`f/${i}.txt`, 'upload').catch(() => undefined);
    expect(changes.size).toBe(1);
    expect(changes.owes('never/changed.txt')).toBe(true);
    log.failing = false;
    const entry = await changes.purge('f/1.txt', 'upload');
    expect(entry.all).toBe(true);
    expect(log.taken).toHaveLength(1);
    expect([changes.size, changes.owes('f/1.txt')]).toEqual([0, false]);
    changes.close();
  });
});
