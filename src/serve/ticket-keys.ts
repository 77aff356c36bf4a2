/**
 * Session ticket keys (RFC 8446 §4.6.1, RFC 5077): an ordered list of keys, the first encrypting
 * new tickets and every one decrypting, so a rotation (a key added at the top everywhere, the last
 * one removed later) never turns a client's resumption into a full handshake.
 *
 * Node's documented API takes one key (`ticketKeys`, `server.setTicketKeys`): a ticket made with
 * any other key cannot be decrypted. Node's SecureContext also has, since v0.11 and still in
 * v26, the hook its own single-key handling is built on: `enableTicketKeyCallback()` makes
 * OpenSSL ask `onticketkeycallback(name, iv, encrypt)` for the key of each ticket it makes or
 * reads. It is undocumented, so it is used only where it exists, with a strict return shape (a
 * malformed answer aborts the process: the callback never throws and always answers whole); where
 * it is missing, the first key alone is set with setTicketKeys and older tickets start a full
 * handshake (`multiKey` says which).
 *
 * A key is 48 bytes, as Node's own: a 16-byte name (sent in the ticket, in the clear), a 16-byte
 * HMAC-SHA256 key, a 16-byte AES-128-CBC key. The key file holds one per line in base64
 * (`openssl rand -base64 48`), `#` comments and blank lines ignored.
 */
import { randomBytes } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { CdnError } from '../errors.js';

export const TICKET_KEY_BYTES = 48;
/** Keys a file may list: rotation needs two or three; more is a mistake. */
export const MAX_TICKET_KEYS = 16;

/** The keys in a ticket key file's text, in order; a CdnError naming the file and the line otherwise. */
export function parseTicketKeys(text: string, file: string): Buffer[] {
  const keys: Buffer[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '').trim();
    if (line === '') continue;
    const key = /^[A-Za-z0-9+/]+={0,2}$/.test(line) ? Buffer.from(line, 'base64') : undefined;
    if (key === undefined || key.length !== TICKET_KEY_BYTES) {
      throw new CdnError('invalid_ticket_keys', 'client', `${file}: line ${i + 1}: expected ${TICKET_KEY_BYTES} bytes in base64 (openssl rand -base64 48)${key === undefined ? '' : `, got ${key.length} bytes`}`);
    }
    if (keys.some((k) => k.subarray(0, 16).equals(key.subarray(0, 16)))) {
      throw new CdnError('invalid_ticket_keys', 'client', `${file}: line ${i + 1}: the same key (its first 16 bytes, the name) is listed twice`);
    }
    keys.push(key);
  }
  if (keys.length === 0) throw new CdnError('invalid_ticket_keys', 'client', `${file}: no keys: one per line, 48 bytes in base64 (openssl rand -base64 48)`);
  if (keys.length > MAX_TICKET_KEYS) throw new CdnError('invalid_ticket_keys', 'client', `${file}: ${keys.length} keys; at most ${MAX_TICKET_KEYS}`);
  return keys;
}

/** A fresh random key, for a node without a key file. */
export function randomTicketKey(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/** The native half of a SecureContext, as far as tickets go. */
interface NativeContext {
  setTicketKeys(key: Buffer): void;
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

/** OpenSSL's answers (ssl.h, SSL_CTX_set_tlsext_ticket_key_cb): no such key, the key, the key but issue a new ticket. */
const UNKNOWN = 0;
const FOUND = 1;
const FOUND_RENEW = 2;
const FAILED = -1;
const NO_KEY = Buffer.alloc(16);

/** The ticket keys of one server process; contexts made with it follow changes to the list. */
export class TicketKeys {
  private keys: readonly Buffer[];
  /** Whether every key decrypts (the native hook exists), or only the first. */
  readonly multiKey: boolean;
  /** Contexts set with the first key alone (no hook), updated when the keys change. */
  private readonly singleKeyContexts = new Set<WeakRef<NativeContext>>();

  constructor(keys: readonly Buffer[], options: { multiKey?: boolean } = {}) {
    if (keys.length === 0 || keys.some((k) => k.length !== TICKET_KEY_BYTES)) throw new CdnError('invalid_ticket_keys', 'internal', `ticket keys are ${TICKET_KEY_BYTES} bytes, at least one`);
    this.keys = keys;
    this.multiKey = options.multiKey ?? hasTicketKeyHook();
  }

  /** The key that encrypts new tickets. */
  get current(): Buffer {
    return this.keys[0]!;
  }

  get count(): number {
    return this.keys.length;
  }

  /** Whether `keys` is this very list, in this order. */
  sameAs(keys: readonly Buffer[]): boolean {
    return keys.length === this.keys.length && keys.every((k, i) => k.equals(this.keys[i]!));
  }

  /** Replaces the list: new tickets use its first key at once, on every context installed. */
  set(keys: readonly Buffer[]): void {
    if (keys.length === 0 || keys.some((k) => k.length !== TICKET_KEY_BYTES)) throw new CdnError('invalid_ticket_keys', 'internal', `ticket keys are ${TICKET_KEY_BYTES} bytes, at least one`);
    this.keys = keys;
    for (const ref of this.singleKeyContexts) {
      const native = ref.deref();
      if (native === undefined) this.singleKeyContexts.delete(ref);
      else native.setTicketKeys(this.current);
    }
  }

  /** Makes `context` encrypt and decrypt tickets with these keys. */
  install(context: SecureContext): void {
    const native = (context as unknown as { context: NativeContext }).context;
    if (this.multiKey && typeof native.enableTicketKeyCallback === 'function') {
      native.onticketkeycallback = (name, _iv, encrypt) => this.answer(name, encrypt);
      native.enableTicketKeyCallback();
      return;
    }
    native.setTicketKeys(this.current);
    this.singleKeyContexts.add(new WeakRef(native));
  }

  /** What OpenSSL gets for one ticket: [result, hmacKey, aesKey] and, to encrypt, [name, iv]. Never throws. */
  private answer(name: Buffer, encrypt: boolean): unknown[] {
    try {
      if (encrypt) {
        const key = this.current;
        return [FOUND, key.subarray(16, 32), key.subarray(32, 48), key.subarray(0, 16), randomBytes(16)];
      }
      for (let i = 0; i < this.keys.length; i++) {
        const key = this.keys[i]!;
        // A ticket made with an older key is accepted and replaced by one made with the current key.
        if (key.subarray(0, 16).equals(name)) return [i === 0 ? FOUND : FOUND_RENEW, key.subarray(16, 32), key.subarray(32, 48)];
      }
      return [UNKNOWN, NO_KEY, NO_KEY];
    } catch {
      return [FAILED, NO_KEY, NO_KEY];
    }
  }
}

/** Whether this Node.js has the native hook that lets several keys decrypt. */
export function hasTicketKeyHook(): boolean {
  hook ??= typeof (createSecureContext() as unknown as { context: Partial<NativeContext> }).context.enableTicketKeyCallback === 'function';
  return hook;
}
let hook: boolean | undefined;
