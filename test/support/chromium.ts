/**
 * Headless Chromium driven through the DevTools protocol, for browser checks: started with a new
 * empty profile, kept off every address but loopback (no first-run, background networking,
 * component updates or sync), trusting one certificate by its public key, and spoken to over the
 * WebSocket it announces in DevToolsActivePort (undici's WebSocket client: no extra dependency).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'undici';

/** Debian's chromium, if installed. */
export function chromiumPath(): string | undefined {
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}

/** Chromium's --ignore-certificate-errors-spki-list value for a certificate: base64 SHA-256 of its public key. */
export function spkiHash(pem: Buffer): string {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<Listener>>();

  private constructor(
    readonly child: ChildProcess,
    private readonly ws: WebSocket,
    private readonly profile: string,
  ) {
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result ?? {});
        return;
      }
      for (const listener of this.listeners.get(message.method ?? '') ?? []) listener(message.params ?? {}, message.sessionId);
    });
  }

  static async launch(options: { trustSpki?: string } = {}): Promise<Chromium> {
    const binary = chromiumPath();
    if (binary === undefined) throw new Error('chromium is not installed');
    const profile = await mkdtemp(join(tmpdir(), 'anycdn-chromium-'));
    const args = [
      '--headless',
      '--no-sandbox',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      `--user-data-dir=${profile}`,
      '--remote-debugging-port=0',
      ...(options.trustSpki === undefined ? [] : [`--ignore-certificate-errors-spki-list=${options.trustSpki}`]),
      'about:blank',
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const portFile = join(profile, 'DevToolsActivePort');
    const deadline = performance.now() + 30_000;
    while (!existsSync(portFile) || (await readFile(portFile, 'utf8')).split('\n').length < 2) {
      if (performance.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        await rm(profile, { recursive: true, force: true });
        throw new Error(`chromium did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const [port, path] = (await readFile(portFile, 'utf8')).split('\n');
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error('cannot reach chromium over the DevTools protocol')));
    });
    return new Chromium(child, ws, profile);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  }

  on(method: string, listener: Listener): () => void {
    const set = this.listeners.get(method) ?? new Set();
    set.add(listener);
    this.listeners.set(method, set);
    return () => set.delete(listener);
  }

  /** Resolves with the first `method` event of `sessionId` from now on; rejects after `timeoutMs`. */
  once(method: string, sessionId: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(method, (params, from) => {
        if (from !== sessionId) return;
        clearTimeout(timer);
        off();
        resolve(params);
      });
    });
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.send('Browser.close'), new Promise((r) => setTimeout(r, 2_000))]);
    } catch {
      // already going
    }
    this.ws.close();
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}
