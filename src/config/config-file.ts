/**
 * Reading a configuration file into plain data, before (and without) its validation: JSON by
 * extension, YAML otherwise (a superset). The edge's primary reads `workers` from this to fork its
 * workers before it loads the schema validator (src/cli/edge-command.ts), so nothing here loads
 * zod, and the YAML parser is loaded only for a YAML file.
 */
import { readFile } from 'node:fs/promises';
import { CdnError } from '../errors.js';
import { lazy } from '../lazy.js';

const yaml = lazy(() => import('yaml'));

/** Parses YAML text (the `yaml` package's parse). */
export type YamlParse = (text: string) => unknown;

export function configError(file: string, field: string, message: string): CdnError {
  const where = field === '' ? file : `${file}: ${field}`;
  return new CdnError('invalid_config', 'client', `${where}: ${message}`, { field });
}

/** Parse file text as JSON (by extension) or as YAML with `parseYaml` (which a .json file does not need). */
export function parseConfigWith(file: string, text: string, parseYaml: YamlParse | undefined): unknown {
  try {
    if (file.endsWith('.json') || parseYaml === undefined) return JSON.parse(text);
    return parseYaml(text);
  } catch (err) {
    throw configError(file, '', `cannot parse: ${(err as Error).message}`);
  }
}

/** The file's content as data, unvalidated; errors name the file. */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw configError(file, '', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfigWith(file, text, file.endsWith('.json') ? undefined : (await yaml()).parse);
}
