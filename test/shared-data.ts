// The reference data beside the repository (../shared/data): tests that need it skip, saying why,
// when it is not there.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHARED_DATA = resolve(fileURLToPath(new URL('..', import.meta.url)), '../shared/data');

/** `false` when every file exists, else a skip reason naming the first missing one. */
export function skipWithoutSharedData(...relativePaths: string[]): false | string {
  for (const path of relativePaths) {
    const full = join(SHARED_DATA, path);
    if (!existsSync(full)) return `${full} is absent (the shared reference data is not checked out beside the repository)`;
  }
  return false;
}
