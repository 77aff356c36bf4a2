/**
 * Configuration loading: a YAML or JSON file read once (config-file.ts), `{ env: NAME }` secrets
 * resolved, validated against one zod schema per command, and returned as a frozen value. Errors
 * name the file and the field path. Nothing else in anycdn reads `process.env`; values come in
 * through here.
 */
import { z } from 'zod';
import { configError, readConfigFile } from './config-file.js';
import { deepFreeze } from './frozen.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A secret given inline or as `{ env: NAME }` to read from the environment. */
export const secret = z.union([z.string().min(1), z.strictObject({ env: z.string().min(1) })], {
  error: (issue) => (issue.input === undefined ? 'required: a string, or { env: VARIABLE_NAME }' : 'expected a string, or { env: VARIABLE_NAME }'),
});

/** Replace every `{ env: NAME }` object with the variable's value; a missing variable is an error. */
export function resolveSecrets(value: unknown, env: Env, file: string, path: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v, i) => resolveSecrets(v, env, file, [...path, String(i)]));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1 && entries[0]![0] === 'env' && typeof entries[0]![1] === 'string') {
      const name = entries[0]![1];
      const v = env[name];
      if (v === undefined || v === '') {
        throw configError(file, path.join('.'), `environment variable ${name} is not set`);
      }
      return v;
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolveSecrets(v, env, file, [...path, k])]));
  }
  return value;
}

/** Validate an already-parsed object; `file` only names the source in errors. */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, file: string, env: Env): Readonly<z.output<S>> {
  const resolved = resolveSecrets(raw ?? {}, env, file);
  const result = schema.safeParse(resolved);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    let path = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      path = path === '' ? key : `${path}.${key}`;
      message = 'unknown key';
    }
    throw configError(file, path, message);
  }
  return deepFreeze(result.data);
}

export async function loadConfigFile<S extends z.ZodType>(schema: S, file: string, env: Env): Promise<Readonly<z.output<S>>> {
  return validateConfig(schema, await readConfigFile(file), file, env);
}
