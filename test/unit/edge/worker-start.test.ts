import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { requestStart } from '../../../edge/cluster-worker.js';
import type { ClusterMessage, WorkerStart } from '../../../edge/cluster-protocol.js';
import type { EdgeConfig } from '../../../edge/config.js';

const config = { pop: 'p', node: 'n' } as unknown as EdgeConfig;
const startMessage = (diskOwned: boolean): ClusterMessage => ({ type: 'anycdn:start', config, writer: 2, diskOwned, ticketKey: undefined });

/** A worker's start over an emitter standing in for its IPC channel: what it sent, and whether each promise settled. */
function worker(): { channel: EventEmitter; sent: ClusterMessage[]; start: Promise<WorkerStart>; owned: () => boolean } {
  const channel = new EventEmitter();
  const sent: ClusterMessage[] = [];
  const asked = requestStart((m) => sent.push(m), channel);
  let owned = false;
  void asked.diskOwned.then(() => (owned = true));
  return { channel, sent, start: asked.start, owned: () => owned };
}

const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('a worker asking its primary for its start', () => {
  it('asks at once, and takes a start that says the disk is owned', async () => {
    const w = worker();
    expect(w.sent).toEqual([{ type: 'anycdn:start-request' }]);
    w.channel.emit('message', startMessage(true));
    expect(await w.start).toMatchObject({ writer: 2, diskOwned: true });
    await settled();
    expect(w.owned()).toBe(true);
    expect(w.channel.listenerCount('message')).toBe(0);
    expect(w.channel.listenerCount('disconnect')).toBe(0);
  });

  it('waits for the word that the disk is owned after a start that says it is not', async () => {
    const w = worker();
    w.channel.emit('message', startMessage(false));
    expect(await w.start).toMatchObject({ diskOwned: false });
    await settled();
    expect(w.owned()).toBe(false);
    w.channel.emit('message', { type: 'anycdn:disk-owned' } satisfies ClusterMessage);
    await settled();
    expect(w.owned()).toBe(true);
    expect(w.channel.listenerCount('message')).toBe(0);
  });

  it('still takes its start when the primary said the disk is owned first (it opened it while the request waited)', async () => {
    const w = worker();
    w.channel.emit('message', { type: 'anycdn:disk-owned' } satisfies ClusterMessage);
    await settled();
    expect(w.owned()).toBe(true);
    // The start, sent after the disk was opened, says so too; either way the worker opens after its owner.
    w.channel.emit('message', startMessage(false));
    expect(await w.start).toMatchObject({ writer: 2, diskOwned: true });
    expect(w.channel.listenerCount('message')).toBe(0);
  });

  it('fails its start when the primary goes away before answering', async () => {
    const w = worker();
    w.channel.emit('disconnect');
    await expect(w.start).rejects.toThrow(/went away before this worker started/);
    expect(w.channel.listenerCount('message')).toBe(0);
  });
});
