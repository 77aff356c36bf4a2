/**
 * `anycdn upload FILE PATH` and `anycdn upload DIR PREFIX`: the publisher's client for
 * `PUT /_cdn/assets/{path}`. A folder is uploaded file by file (a few at a time) with a progress
 * bar on a terminal and one line per file otherwise.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { request } from 'undici';
import { assetPathToUrl, validateAssetPath } from '../asset-path.js';
import { clientError, isCdnError } from '../errors.js';
import { parseFlags, UsageError, type Command, type CommandIo } from './args.js';

const USAGE = `Usage: anycdn upload FILE PATH
       anycdn upload DIR PREFIX

Uploads FILE as PATH (e.g. photos/cat.jpg), or every file under DIR as PREFIX/relative/path.

Options:
  --origin URL          origin base URL (default $ANYCDN_ORIGIN or http://127.0.0.1:8081)
  --token TOKEN         publish token (default $ANYCDN_PUBLISH_TOKEN)
  --cache-control CC    Cache-Control stored with the asset(s)
  --tag TAG             surrogate key (tag) stored with the asset(s); repeatable
  --concurrency N       uploads at once for a folder (default 4)
  -h, --help            show this help`;

interface UploadTarget {
  file: string;
  path: string;
  size: number;
}

export const runUpload: Command = async (args, io) => {
  const { values, positionals } = parseFlags(
    args,
    {
      origin: { type: 'string' },
      token: { type: 'string' },
      'cache-control': { type: 'string' },
      tag: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`expected FILE PATH or DIR PREFIX\n\n${USAGE}`);
  const [source, dest] = positionals as [string, string];
  const origin = (values.origin ?? io.env['ANYCDN_ORIGIN'] ?? 'http://127.0.0.1:8081').replace(/\/+$/, '');
  const token = values.token ?? io.env['ANYCDN_PUBLISH_TOKEN'];
  if (token === undefined || token === '') throw new UsageError('a publish token is needed: --token or $ANYCDN_PUBLISH_TOKEN');
  const concurrency = Number(values.concurrency ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer from 1 to 64');

  const info = await stat(source).catch(() => undefined);
  if (info === undefined) throw new UsageError(`${source}: no such file or folder`);
  const targets: UploadTarget[] = info.isDirectory()
    ? await listFolder(source, dest)
    : [{ file: source, path: validateAssetPath(dest), size: info.size }];
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (values['cache-control'] !== undefined) headers['cache-control'] = values['cache-control'];
  if (values.tag !== undefined && values.tag.length > 0) headers['surrogate-key'] = values.tag.join(' ');

  const progress = new Progress(io, targets, info.isDirectory());
  let failures = 0;
  let next = 0;
  async function worker(): Promise<void> {
    while (next < targets.length) {
      const t = targets[next++]!;
      const result = await uploadOne(origin, t, headers);
      if (!result.ok) failures++;
      progress.done(t, result.message, result.ok);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  progress.finish(failures);
  return failures === 0 ? 0 : 1;
};

async function listFolder(dir: string, prefix: string): Promise<UploadTarget[]> {
  const cleanPrefix = prefix.replace(/^\/+|\/+$/g, '');
  const out: UploadTarget[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const rel = relative(dir, file).split(sep).join('/');
    let path: string;
    try {
      path = validateAssetPath(cleanPrefix === '' ? rel : `${cleanPrefix}/${rel}`);
    } catch (err) {
      // Name the file: the message alone does not say which of many is wrong.
      if (isCdnError(err)) throw clientError(err.code, `${file}: ${err.message}`, { field: 'path' });
      throw err;
    }
    out.push({ file, path, size: (await stat(file)).size });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

async function uploadOne(origin: string, t: UploadTarget, headers: Record<string, string>): Promise<{ ok: boolean; message: string }> {
  try {
    const res = await request(`${origin}/_cdn/assets/${assetPathToUrl(t.path)}`, {
      method: 'PUT',
      headers: { ...headers, 'content-length': String(t.size) },
      body: createReadStream(t.file),
    });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const meta = JSON.parse(text) as { etag: string; contentType: string };
      return { ok: true, message: `${res.statusCode === 201 ? 'created' : 'replaced'} ${meta.contentType} ${meta.etag}` };
    }
    let message = text;
    try {
      message = (JSON.parse(text) as { message: string }).message;
    } catch {
      // not JSON: keep the raw text
    }
    return { ok: false, message: `HTTP ${res.statusCode}: ${message}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** A one-line progress bar on a terminal; one line per file otherwise. */
class Progress {
  private files = 0;
  private bytes = 0;
  private readonly totalBytes: number;
  constructor(
    private readonly io: CommandIo,
    private readonly targets: UploadTarget[],
    private readonly folder: boolean,
  ) {
    this.totalBytes = targets.reduce((n, t) => n + t.size, 0);
  }

  done(t: UploadTarget, message: string, ok: boolean): void {
    this.files++;
    this.bytes += t.size;
    const line = `${ok ? 'ok  ' : 'FAIL'} /${t.path} (${formatBytes(t.size)}) ${message}`;
    if (this.folder && this.io.stderr.isTTY) {
      if (!ok) this.io.stderr.write(`\r\x1b[K${line}\n`);
      this.io.stderr.write(`\r\x1b[K${this.bar()}`);
    } else {
      (ok ? this.io.stdout : this.io.stderr).write(line + '\n');
    }
  }

  finish(failures: number): void {
    if (this.folder && this.io.stderr.isTTY) this.io.stderr.write('\n');
    if (this.folder) {
      this.io.stdout.write(`${this.targets.length - failures} of ${this.targets.length} files uploaded (${formatBytes(this.totalBytes)})\n`);
    }
  }

  private bar(): string {
    const width = 30;
    const fraction = this.totalBytes === 0 ? this.files / this.targets.length : this.bytes / this.totalBytes;
    const filled = Math.round(fraction * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.files}/${this.targets.length} files, ${formatBytes(this.bytes)}/${formatBytes(this.totalBytes)}`;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
