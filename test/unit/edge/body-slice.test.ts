import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { sliceReadable } from '../../../edge/body-slice.js';

async function collect(stream: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

describe('sliceReadable', () => {
  it('yields the inclusive range across chunks and releases the source', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 3, 11);
    source.write('0123456');
    source.write('789abcdef');
    source.end();
    expect(await collect(slice)).toBe('3456789ab');
    expect(source.destroyed).toBe(true);
  });

  // A client gone before its answer starts: the response is destroyed, and pipeline() destroys the
  // slice before it ever read. The source (a shared body's reader) must be released all the same.
  it('releases the source when destroyed before its first read', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 0, 9);
    const gone = new Writable({ write: (_chunk, _enc, cb) => cb() });
    gone.destroy();
    await expect(pipeline(slice, gone)).rejects.toThrow();
    await expect.poll(() => source.destroyed).toBe(true);
  });
});
