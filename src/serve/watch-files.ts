/**
 * Noticing that files were replaced: certificate and key files renewed by certbot or acme.sh (which
 * write new files, or repoint symbolic links, in place), a ticket key file rotated. The folders
 * that hold them are watched, not the files: a file replaced by a rename is a new file that a watch
 * on the old one never reports. Changes are gathered for `debounceMs` (a deploy hook writes a
 * certificate, then its key), then reported once.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface FileWatch {
  close(): void;
}

/**
 * Calls `onChange` once changes to any of `files` have settled for `debounceMs`. A folder that
 * cannot be watched (missing, too many watches) is left out and reported through `onError`; the
 * caller still has SIGHUP.
 */
export function watchFiles(files: readonly string[], onChange: () => void, options: { debounceMs: number; onError?: (err: unknown, dir: string) => void }): FileWatch {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const path = resolve(f);
    const names = byDir.get(dirname(path)) ?? new Set<string>();
    names.add(basename(path));
    byDir.set(dirname(path), names);
  }
  let timer: NodeJS.Timeout | undefined;
  const changed = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, options.debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        // Without a name (some platforms), any change in the folder counts.
        if (name === null || names.has(name.toString())) changed();
      });
      watcher.on('error', (err) => options.onError?.(err, dir));
      watchers.push(watcher);
    } catch (err) {
      options.onError?.(err, dir);
    }
  }
  return {
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
