/**
 * Helpers the benchmarks and the tests share (tests import them from here; bench code
 * never imports test code): a free loopback port, the repository's root from compiled
 * code (which runs in dist/bench/ or dist/test/), and the shared folder beside it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before
 * the caller binds it, so prefer port 0 and a ready line where the program allows it.
 */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the listening socket has no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** The nearest ancestor of `from` (inclusive) that holds package.json. */
export function findRepoRoot(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json found in ${from} or any parent directory`);
    dir = parent;
  }
}

/**
 * The shared folder (the wire doc, the Go peers): $ARMORFEED_SHARED when set (.ci/run
 * sets it, also for a clone made elsewhere), else `shared` beside the repository.
 */
export function sharedDir(repoRoot: string): string {
  return process.env.ARMORFEED_SHARED ?? path.resolve(repoRoot, '..', 'shared');
}
