/**
 * Locating the repository from compiled tests. Tests run from dist/test/..., so paths
 * are found by walking up to the directory that holds package.json rather than by
 * counting `..` segments, which differ between the source and the compiled tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The nearest ancestor of `from` (inclusive) that contains package.json. */
export function findRepoRoot(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json found in ${from} or any parent directory`);
    dir = parent;
  }
}

export const repoRoot = findRepoRoot();

/** The shared folder that CI checks out beside the clone (../shared). */
export const sharedDir = path.resolve(repoRoot, '../shared');
