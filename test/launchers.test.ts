/**
 * The broker's node options (src/cli/nodeFlags.ts) are the same in every launcher a user
 * runs: the bin shebang and `npm start`. (Tools that spawn `serve` import the list.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BROKER_NODE_FLAGS } from '../src/cli/nodeFlags';
import { repoRoot } from './helpers/repo';

test('launchers - the bin shebang and npm start pass the broker node options', () => {
  const shebang = fs.readFileSync(path.join(repoRoot, 'bin', 'armorfeed.js'), 'utf8').split('\n')[0];
  const start = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  assert.ok(BROKER_NODE_FLAGS.length > 0);
  for (const flag of BROKER_NODE_FLAGS) {
    assert.ok(shebang.split(/\s+/).includes(flag), `bin/armorfeed.js shebang has ${flag}: ${shebang}`);
    assert.ok(start.split(/\s+/).includes(flag), `npm start has ${flag}: ${start}`);
  }
});
