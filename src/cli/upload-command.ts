/**
 * `anycdn upload FILE PATH` and `anycdn upload DIR PREFIX [--delete] [--dry-run]`: the publisher's
 * client for `PUT /_cdn/assets/{path}`. A folder is synchronised: one listing of what the origin
 * stores under PREFIX (`GET /_cdn/assets`, paged) decides what to send (sync-plan.ts), so only new
 * and changed files are uploaded, a few at a time, with a progress bar on a terminal and one line
 * per upload otherwise; `--delete` removes what is stored under PREFIX but no longer in DIR, and
 * `--dry-run` prints what would happen and changes nothing. Each upload or delete that changes
 * something purges it at every edge (the origin does that); the summary counts them.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative, sep } from 'node:path';
import { request } from 'undici';
import { assetPathToUrl, validateAssetPath } from '../asset-path.js';
import { clientError, isCdnError } from '../errors.js';
import { parseFlags, UsageError, type Command, type CommandIo } from './args.js';
import { planSync, storedHeaders, type LocalFile, type StoredAsset, type SyncPlan } from './sync-plan.js';

const USAGE = `Usage: anycdn upload FILE PATH
       anycdn upload DIR PREFIX [--delete] [--dry-run]

Uploads FILE as PATH (e.g. photos/cat.jpg), or synchronises DIR to PREFIX: every file under DIR
becomes PREFIX/relative/path, and only files that are new or changed (bytes, Cache-Control or
tags) are sent. The origin purges what an upload or delete changes at every edge.

Options:
  --origin URL          origin base URL (default $ANYCDN_ORIGIN or http://127.0.0.1:8081)
  --token TOKEN         publish token (default $ANYCDN_PUBLISH_TOKEN)
  --cache-control CC    Cache-Control stored with the asset(s)
  --tag TAG             surrogate key (tag) stored with the asset(s); repeatable
  --delete              (folder) also delete assets under PREFIX that are not in DIR
  --dry-run             (folder) print what would be uploaded and deleted; change nothing
  --concurrency N       uploads at once for a folder (default 4)
  -h, --help            show this help`;

/** Assets asked for per listing request. */
const LIST_PAGE = 1000;

interface Client {
  origin: string;
  headers: Record<string, string>;
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
      delete: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
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
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (values['cache-control'] !== undefined) headers['cache-control'] = values['cache-control'];
  if (values.tag !== undefined && values.tag.length > 0) headers['surrogate-key'] = values.tag.join(' ');
  const client: Client = { origin, headers };

  if (!info.isDirectory()) {
    if (values.delete === true || values['dry-run'] === true) throw new UsageError(`--delete and --dry-run apply to a folder\n\n${USAGE}`);
    const target = { file: source, path: validateAssetPath(dest), size: info.size };
    const result = await uploadOne(client, target);
    const line = `${result.ok ? 'ok  ' : 'FAIL'} /${target.path} (${formatBytes(target.size)}) ${result.message}\n`;
    (result.ok ? io.stdout : io.stderr).write(line);
    return result.ok ? 0 : 1;
  }

  const prefix = dest.replace(/^\/+|\/+$/g, '');
  const local = await listFolder(source, prefix);
  const stored = await listStored(client, prefix === '' ? '' : `${prefix}/`);
  const plan = planSync(local, stored, storedHeaders(values['cache-control'], values.tag ?? []), values.delete === true);
  if (values['dry-run'] === true) {
    printPlan(io, plan);
    return 0;
  }
  return sync(io, client, plan, concurrency);
};

async function sync(io: CommandIo, client: Client, plan: SyncPlan, concurrency: number): Promise<number> {
  const counts = { uploaded: 0, unchanged: plan.unchanged.length, deleted: 0, purged: 0, failed: 0 };
  const progress = new Progress(io, plan.upload.map((u) => u.local));
  let next = 0;
  async function worker(): Promise<void> {
    while (next < plan.upload.length) {
      const t = plan.upload[next++]!.local;
      const result = await uploadOne(client, t);
      if (!result.ok) counts.failed++;
      else if (result.unchanged) counts.unchanged++;
      else counts.uploaded++;
      if (result.purged) counts.purged++;
      progress.done(t, result.message, result.ok);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.upload.length) }, worker));
  progress.finish();
  for (const path of plan.remove) {
    const result = await deleteOne(client, path);
    if (!result.ok) counts.failed++;
    else counts.deleted++;
    if (result.purged) counts.purged++;
    (result.ok ? io.stdout : io.stderr).write(`${result.ok ? 'ok  ' : 'FAIL'} /${path} ${result.message}\n`);
  }
  io.stdout.write(`${counts.uploaded} uploaded, ${counts.unchanged} unchanged, ${counts.deleted} deleted, ${counts.purged} purged${counts.failed > 0 ? `, ${counts.failed} failed` : ''}\n`);
  return counts.failed === 0 ? 0 : 1;
}

function printPlan(io: CommandIo, plan: SyncPlan): void {
  for (const { local, reason } of plan.upload) {
    io.stdout.write(`would upload /${local.path} (${formatBytes(local.size)}, ${reason === 'new' ? 'new' : `changed ${reason}`})\n`);
  }
  for (const path of plan.remove) io.stdout.write(`would delete /${path}\n`);
  io.stdout.write(`dry run: ${plan.upload.length} to upload, ${plan.unchanged.length} unchanged, ${plan.remove.length} to delete; nothing was changed\n`);
}

/** Every file under `dir`, as the asset path it is uploaded as, with its size and SHA-256. */
async function listFolder(dir: string, prefix: string): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const rel = relative(dir, file).split(sep).join('/');
    let path: string;
    try {
      path = validateAssetPath(prefix === '' ? rel : `${prefix}/${rel}`);
    } catch (err) {
      // Name the file: the message alone does not say which of many is wrong.
      if (isCdnError(err)) throw clientError(err.code, `${file}: ${err.message}`, { field: 'path' });
      throw err;
    }
    const { size, sha256 } = await digestFile(file);
    out.push({ file, path, size, sha256 });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function digestFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** What the origin stores under `prefix`, every page of it. */
async function listStored(client: Client, prefix: string): Promise<StoredAsset[]> {
  const out: StoredAsset[] = [];
  let after: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ prefix, limit: String(LIST_PAGE) });
    if (after !== undefined) query.set('after', after);
    const res = await request(`${client.origin}/_cdn/assets?${query}`, { headers: { authorization: client.headers['authorization']! } });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw clientError('list_failed', `listing ${prefix === '' ? 'the origin' : prefix} failed: HTTP ${res.statusCode}: ${messageOf(text)}`);
    const page = JSON.parse(text) as { assets: StoredAsset[]; next: string | null };
    out.push(...page.assets);
    if (page.next === null) return out;
    after = page.next;
  }
}

interface Outcome {
  ok: boolean;
  message: string;
  unchanged?: boolean;
  purged?: boolean;
}

async function uploadOne(client: Client, t: { file: string; path: string; size: number }): Promise<Outcome> {
  try {
    const res = await request(`${client.origin}/_cdn/assets/${assetPathToUrl(t.path)}`, {
      method: 'PUT',
      headers: { ...client.headers, 'content-length': String(t.size) },
      body: createReadStream(t.file),
    });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const meta = JSON.parse(text) as { etag: string; contentType: string; unchanged?: boolean; purge?: { id: string } | null };
      const what = meta.unchanged === true ? 'unchanged' : res.statusCode === 201 ? 'created' : 'replaced';
      const purge = meta.purge ? `, purge ${meta.purge.id}` : '';
      return { ok: true, message: `${what} ${meta.contentType} ${meta.etag}${purge}`, unchanged: meta.unchanged === true, purged: Boolean(meta.purge) };
    }
    return { ok: false, message: `HTTP ${res.statusCode}: ${messageOf(text)}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

async function deleteOne(client: Client, path: string): Promise<Outcome> {
  try {
    const res = await request(`${client.origin}/_cdn/assets/${assetPathToUrl(path)}`, { method: 'DELETE', headers: { authorization: client.headers['authorization']! } });
    const text = await res.body.text();
    if (res.statusCode === 204) {
      const purge = res.headers['x-purge-id'];
      return { ok: true, message: `deleted${typeof purge === 'string' ? `, purge ${purge}` : ''}`, purged: typeof purge === 'string' };
    }
    // Gone already (another deploy): nothing left to delete.
    if (res.statusCode === 404) return { ok: true, message: 'already gone' };
    return { ok: false, message: `HTTP ${res.statusCode}: ${messageOf(text)}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** The `message` of a JSON error body, else the text as it is. */
function messageOf(text: string): string {
  try {
    return (JSON.parse(text) as { message: string }).message ?? text;
  } catch {
    return text;
  }
}

/** A one-line progress bar on a terminal; one line per file otherwise. */
class Progress {
  private files = 0;
  private bytes = 0;
  private readonly totalBytes: number;
  constructor(
    private readonly io: CommandIo,
    private readonly targets: LocalFile[],
  ) {
    this.totalBytes = targets.reduce((n, t) => n + t.size, 0);
  }

  done(t: LocalFile, message: string, ok: boolean): void {
    this.files++;
    this.bytes += t.size;
    const line = `${ok ? 'ok  ' : 'FAIL'} /${t.path} (${formatBytes(t.size)}) ${message}`;
    if (this.io.stderr.isTTY) {
      if (!ok) this.io.stderr.write(`\r\x1b[K${line}\n`);
      this.io.stderr.write(`\r\x1b[K${this.bar()}`);
    } else {
      (ok ? this.io.stdout : this.io.stderr).write(line + '\n');
    }
  }

  finish(): void {
    if (this.io.stderr.isTTY && this.targets.length > 0) this.io.stderr.write('\n');
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
