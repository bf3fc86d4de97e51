import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { packageRoot } from './module-path.js';

/**
 * The JSON Schemas shipped in schemas/ (the same files editors use for completion), compiled by
 * one Ajv instance: every error listed, with the failing value (verbose), strict, union types
 * allowed, and the `errorMessage` keyword, the message editors (VS Code's JSON and YAML language
 * services) show for a bad value, which the scenario loader shows too.
 */

export type SchemaName = 'scenario' | 'topology' | 'profile-set' | 'capacity-profile' | 'result' | 'mapping' | 'protocol';

const NAMES: readonly SchemaName[] = ['capacity-profile', 'profile-set', 'topology', 'scenario', 'result', 'mapping', 'protocol'];

let ajv: Ajv | null = null;

/** The compiled validator for a schema; `validator.schema` is the schema itself. */
export function schemaValidator(name: SchemaName): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    const dir = join(packageRoot(import.meta.url), 'schemas');
    for (const n of NAMES) ajv.addSchema(JSON.parse(readFileSync(join(dir, `${n}.schema.json`), 'utf8')) as object);
  }
  return ajv.getSchema(`https://rmmscale.dev/schemas/${name}.schema.json`)!;
}
