/**
 * Blob entries whose body is one Buffer in memory: used by the memory store, by the disk store for
 * small objects it reads in one go, and by the tiered store. Streams are plain byte streams (not
 * object mode) so they pipe into an HTTP response like a file stream would.
 */
import { Readable } from 'node:stream';
import { checkRange, type BlobEntry, type ByteRange, type StoredMeta } from './blob-store.js';

/** A byte stream over `data` or an inclusive range of it (validated against its length). */
export function bufferReadable(data: Buffer, range?: ByteRange): Readable {
  let slice = data;
  if (range !== undefined) {
    checkRange(range, data.length);
    slice = data.subarray(range.start, range.end + 1);
  }
  let sent = false;
  return new Readable({
    read() {
      if (!sent && slice.length > 0) this.push(slice);
      sent = true;
      this.push(null);
    },
  });
}

export function bufferEntry(meta: StoredMeta, data: Buffer): BlobEntry {
  return { meta, data, open: (range) => bufferReadable(data, range) };
}

/** Freeze a meta and its arrays so an entry shared between requests cannot be changed by one of them. */
export function freezeMeta(meta: StoredMeta): StoredMeta {
  // A meta copied from a frozen one (the memory tier's copy of a disk commit) shares its frozen headers.
  if (!Object.isFrozen(meta.headers)) {
    for (const pair of meta.headers) Object.freeze(pair);
    Object.freeze(meta.headers);
  }
  if (meta.tags !== undefined) Object.freeze(meta.tags);
  return Object.freeze(meta);
}

/**
 * Written chunks as one Buffer: a body written in one chunk is that chunk (a writer keeps what it
 * is given, see BlobWriter.write), not a copy of it.
 */
export function wholeOf(chunks: readonly Buffer[], length: number): Buffer {
  return chunks.length === 1 && chunks[0]!.length === length ? chunks[0]! : Buffer.concat(chunks, length);
}

/** Read a (small, verified) disk body into one Buffer; undefined if it vanished or failed its checksum. */
export async function readAll(entry: BlobEntry): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of entry.open()) parts.push(chunk as Buffer);
  } catch {
    return undefined;
  }
  return Buffer.concat(parts);
}
