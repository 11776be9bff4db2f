/**
 * Locating the repository from compiled tests. Tests run from dist/test/..., so paths
 * are found by walking up to the directory that holds package.json rather than by
 * counting `..` segments, which differ between the source and the compiled tree.
 */
import { findRepoRoot, sharedDir as sharedDirOf } from '../../bench/devkit';

export { findRepoRoot };

export const repoRoot = findRepoRoot();

/** The shared folder: $ARMORFEED_SHARED (set by .ci/run), else ../shared beside the clone. */
export const sharedDir = sharedDirOf(repoRoot);
