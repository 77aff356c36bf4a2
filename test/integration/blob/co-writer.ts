/**
 * Helper process for the several-writers tests (co-writers.test.ts): opens a DiskBlobStore on a
 * folder as co-writer <id> (or as its owner with id 0) and does what its parent asks over the IPC
 * channel of `child_process.fork`. Runs compiled, from dist/test/integration/blob/co-writer.js.
 *
 *   node co-writer.js [--seq-block=<n>] <dir> <id> <maxBytes> <segmentSize> [<ownerPid>]
 *
 * With <ownerPid>, co-writer <id> opens before its owner, that process (openBeforeOwner), and
 * exits with an error if the folder does not allow it. --seq-block: the store's seqBlock.
 *
 * Messages in: { cmd: 'write', keys } stores each key (bodies from bodyOf, 16 at a time) and
 * answers { stored, refused }; { cmd: 'verify', keys } reads each and answers { found, bad };
 * { cmd: 'delete', keys } and { cmd: 'refresh', keys, status } delete or refresh the metadata of
 * each (as a purge and a 304 do) and answer how many there were;
 * { cmd: 'fill', prefix } stores <prefix>0, <prefix>1 … forever, sending { committed: key } for
 * each; { cmd: 'hold' } holds the store's commits (DiskBlobStore.holdCommits) and answers
 * { held: true } once those in flight are done, { cmd: 'release' } lets them go on and answers
 * { released: true }; { cmd: 'close' } closes the store and exits. The first message out is
 * { ready: true }. A message with an `id` has it in its answer too. A co-writer sends
 * { room: true } when it asks its owner for room (DiskBlobStore.onRoomWanted), as a cluster
 * worker does.
 */
import { fileURLToPath } from 'node:url';
import type { BlobEntry, BlobStore } from '../../../src/blob/blob-store.js';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { pseudoRandomBytes } from '../../support/pseudo-random.js';

function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Size of `key`'s body: one in ten is a body file of its own (100 KiB), the others packed (2–2.5 KiB). */
export function sizeOf(key: string): number {
  const h = fnv(key);
  return h % 10 === 0 ? 100 * 1024 : 2048 + (h % 512);
}

/** The body writer `w` stores for `key`: its bytes depend on both, so a mix-up shows. */
export function bodyOf(key: string, w: number, size = sizeOf(key)): Buffer {
  return pseudoRandomBytes(size, fnv(key) ^ Math.imul(w + 1, 0x9e3779b1));
}

/** Store `key` as writer `w` would; false when the store refused it. */
export async function storeAs(store: BlobStore, key: string, w: number): Promise<boolean> {
  const body = bodyOf(key, w);
  try {
    const writer = await store.begin(key, body.length);
    if (writer === undefined) return false;
    await writer.write(body);
    const now = Date.now();
    await writer.commit({ key, size: body.length, status: 200, headers: [['x-writer', String(w)]], requestTime: now, responseTime: now, storedAt: now });
    return true;
  } catch {
    return false;
  }
}

/** What an entry read back holds: 'ok' when its bytes are exactly what the writer its header names stored. */
export async function checkEntry(key: string, entry: BlobEntry): Promise<'ok' | string> {
  const w = Number(entry.meta.headers.find(([name]) => name === 'x-writer')?.[1]);
  if (!Number.isInteger(w)) return `${key}: no x-writer header`;
  const parts: Buffer[] = [];
  for await (const chunk of entry.open()) parts.push(chunk as Buffer);
  const body = Buffer.concat(parts);
  if (entry.meta.size !== body.length) return `${key}: size ${entry.meta.size}, read ${body.length}`;
  if (!body.equals(bodyOf(key, w))) return `${key}: bytes are not writer ${w}'s`;
  if (entry.data !== undefined && !entry.data.equals(body)) return `${key}: data and stream differ`;
  return 'ok';
}

/** Read each key: how many were found, and what was wrong with any. */
export async function verifyKeys(store: BlobStore, keys: string[]): Promise<{ found: number; bad: string[] }> {
  let found = 0;
  const bad: string[] = [];
  for (const key of keys) {
    const entry = await store.get(key);
    if (entry === undefined) continue;
    found += 1;
    const verdict = await checkEntry(key, entry);
    if (verdict !== 'ok') bad.push(verdict);
  }
  return { found, bad };
}

/** Store `keys` as writer `w`, `concurrency` at a time. */
export async function writeKeys(store: BlobStore, keys: string[], w: number, concurrency = 16): Promise<{ stored: number; refused: number }> {
  let next = 0;
  const out = { stored: 0, refused: 0 };
  const one = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      if (await storeAs(store, key, w)) out.stored += 1;
      else out.refused += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return out;
}

type Command =
  | { cmd: 'write'; keys: string[] }
  | { cmd: 'verify'; keys: string[] }
  | { cmd: 'delete'; keys: string[] }
  | { cmd: 'refresh'; keys: string[]; status: number }
  | { cmd: 'fill'; prefix: string }
  | { cmd: 'hold' }
  | { cmd: 'release' }
  | { cmd: 'close' };

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seqBlockArg = args[0]?.startsWith('--seq-block=') === true ? args.shift()!.slice('--seq-block='.length) : undefined;
  const [dir, idArg, maxArg, segArg, ownerArg] = args;
  const id = Number(idArg);
  if (dir === undefined || !Number.isInteger(id) || !(Number(maxArg) > 0) || !(Number(segArg) > 0)) throw new Error('usage: co-writer [--seq-block=<n>] <dir> <id> <maxBytes> <segmentSize> [<ownerPid>]');
  const options = { dir, maxBytes: Number(maxArg), segmentSize: Number(segArg), maxEntrySize: 1024 * 1024, ...(id === 0 ? {} : { writer: id }), ...(seqBlockArg === undefined ? {} : { seqBlock: Number(seqBlockArg) }) };
  const store = ownerArg === undefined ? await DiskBlobStore.open(options) : await DiskBlobStore.openBeforeOwner(options, Number(ownerArg));
  if (store === undefined) throw new Error(`co-writer ${id} may not open ${dir} before its owner`);
  let release: (() => void) | undefined;
  store.onRoomWanted(() => process.send!({ room: true }));
  process.on('message', (msg: Command & { id?: number }) => {
    const send = (answer: object) => process.send!(msg.id === undefined ? answer : { ...answer, id: msg.id });
    void (async () => {
      if (msg.cmd === 'write') send(await writeKeys(store, msg.keys, id));
      else if (msg.cmd === 'verify') send(await verifyKeys(store, msg.keys));
      else if (msg.cmd === 'delete') send({ deleted: (await Promise.all(msg.keys.map((k) => store.delete(k)))).filter(Boolean).length });
      else if (msg.cmd === 'refresh') send({ refreshed: (await Promise.all(msg.keys.map((k) => store.updateMeta(k, { status: msg.status })))).filter(Boolean).length });
      else if (msg.cmd === 'fill') {
        for (let n = 0; ; n++) {
          const key = `${msg.prefix}${n}`;
          if (await storeAs(store, key, id)) send({ committed: key });
        }
      } else if (msg.cmd === 'hold') {
        release = await store.holdCommits(10_000);
        send({ held: true });
      } else if (msg.cmd === 'release') {
        release?.();
        send({ released: true });
      } else if (msg.cmd === 'close') {
        await store.close();
        send({ closed: true });
        process.disconnect();
      }
    })().catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    });
  });
  process.send!({ ready: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
