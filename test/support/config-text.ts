/**
 * Config text parsed as `anycdn` parses a config file (src/config/config-file.ts), synchronously,
 * for tests that hold the text: JSON by extension, YAML otherwise. The commands load the YAML
 * parser only for a YAML file; here it is loaded with the test.
 */
import { parse as parseYaml } from 'yaml';
import { parseConfigWith } from '../../src/config/config-file.js';

export function parseConfigText(file: string, text: string): unknown {
  return parseConfigWith(file, text, parseYaml);
}
