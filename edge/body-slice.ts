/**
 * An inclusive byte range of a stream that starts at byte 0: used to answer a client's Range
 * request from a body that is still arriving from upstream.
 */
import { Readable } from 'node:stream';

export function sliceReadable(source: Readable, start: number, end: number): Readable {
  let pos = 0;
  async function* slice(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        const chunkStart = pos;
        pos += chunk.length;
        if (pos <= start) continue;
        const from = Math.max(0, start - chunkStart);
        const to = Math.min(chunk.length, end + 1 - chunkStart);
        if (to > from) yield chunk.subarray(from, to);
        if (pos > end) break;
      }
    } finally {
      source.destroy();
    }
  }
  const out = Readable.from(slice(), { objectMode: false });
  // Destroyed before its first read (a client gone before the answer started), the generator never
  // runs its `finally`: release the source here too.
  out.once('close', () => source.destroy());
  return out;
}
