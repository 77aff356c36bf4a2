/**
 * An inclusive byte range of a stream that starts at byte 0: used to answer a client's Range
 * request from a body that is still arriving from upstream.
 *
 * The source (a reader of the shared body) is released the moment the slice is destroyed, whatever
 * it is doing then: not yet read, waiting for bytes still on their way, or paused by a slow client.
 * A slice built on an async generator could not do that: destroying it waits for the generator's
 * pending read of the source, i.e. for upstream's next bytes, and a client gone from a ranged
 * answer held the shared body's reader (and the store writer's file) until they came.
 */
import { Readable } from 'node:stream';
import { CdnError } from '../src/errors.js';

export function sliceReadable(source: Readable, start: number, end: number): Readable {
  let pos = 0;
  let finished = false;
  const out = new Readable({
    read: () => void source.resume(),
    destroy: (err, callback) => {
      finished = true;
      source.destroy();
      callback(err);
    },
  });
  source.on('data', (chunk: Buffer) => {
    if (finished) return;
    const chunkStart = pos;
    pos += chunk.length;
    if (pos <= start) return;
    const from = Math.max(0, start - chunkStart);
    const to = Math.min(chunk.length, end + 1 - chunkStart);
    const wantsMore = to > from ? out.push(chunk.subarray(from, to)) : true;
    if (pos > end) {
      // The range is complete: end the slice and let the rest of the body go.
      finished = true;
      out.push(null);
      source.destroy();
    } else if (!wantsMore) {
      source.pause();
    }
  });
  source.once('end', () => {
    if (finished) return;
    // A body shorter than its range: an error, so the answer is cut rather than silently short.
    out.destroy(new CdnError('body_short', 'internal', `body ended at byte ${pos}, before the range ${start}-${end} was complete`));
  });
  source.once('error', (err) => out.destroy(err));
  source.once('close', () => {
    if (!finished) out.destroy(new CdnError('body_short', 'internal', `body closed at byte ${pos}, before the range ${start}-${end} was complete`));
  });
  // Adding a 'data' listener set the source flowing: it reads only when the slice is read.
  source.pause();
  return out;
}
