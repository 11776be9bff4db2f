import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from '../bench/devkit';
import { findPeersBin } from '../bench/peers/children';
import { repoRoot } from './helpers/repo';
import { newRunTag } from '../src/load/options';
import { runLoad } from '../src/load/run-load';
import { formatSummary } from '../src/report';

/** The peers' bin directory (building gofeeder if needed), or undefined when Go or the peers are unavailable. */
function peersBin(): string | undefined {
  try {
    return findPeersBin(repoRoot, undefined);
  } catch {
    return undefined;
  }
}

const bin = peersBin();

test('load - subscriber-only against gofeeder: runs, reports, and its missing count matches gofeeder\'s drops', { skip: bin === undefined ? 'gofeeder not available (../shared/peers/build.sh path failed)' : false }, async () => {
  const port = await freePort();
  const count = 12_000;
  const gf = spawn(path.join(bin as string, 'gofeeder'), ['--addr', `127.0.0.1:${port}`, '--rate', '4000', '--count', String(count), '--wait-clients', '6', '--start-after', '300ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let gfErr = '';
  gf.stderr.on('data', (d: Buffer) => (gfErr += d.toString()));
  try {
    for (let i = 0; i < 100 && !gfErr.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
    const r = await runLoad({
      addr: { host: '127.0.0.1', port },
      // A /stats URL where nothing answers: the run must carry on with broker counters unknown.
      statsUrl: `http://127.0.0.1:${port}/stats`,
      clients: 3,
      streams: 'both',
      slowClients: 1,
      slowDelayUs: 2000,
      stalledClients: 0,
      rate: 0,
      burst: 0,
      durationMs: 15_000,
      alertEvery: 5,
      expect: count,
      idleMs: 1500,
      drainTimeoutMs: 10_000,
      runTag: newRunTag(),
      alertFilter: 'policy',
      logFilter: 'system',
    });
    const table = formatSummary(r);
    assert.equal(r.mode, 'subscriber-only');
    assert.deepEqual(r.failures, [], table);
    assert.equal(r.server, null, table);
    assert.equal(r.verdict.lossAccounted, null, table);
    const [slow, ...fast] = r.clients;
    for (const c of fast) assert.equal(c.received, count, table);
    assert.equal(r.verdict.fastClientsLossless, true, table);
    assert.ok((slow.missing ?? 0) > 0, table);
    assert.ok(r.broker !== null && r.broker.pid === gf.pid, 'the broker PID is found from the listening port');
    // gofeeder's own tally: only the slow client's streams drop, so its total is the slow client's loss.
    gf.kill('SIGTERM');
    await new Promise((resolve) => gf.once('exit', resolve));
    const totals = [...gfErr.matchAll(/drops total=(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(totals.length > 0, gfErr);
    assert.equal(slow.missing, totals[totals.length - 1], `${table}\n${gfErr}`);
  } finally {
    if (gf.exitCode === null) gf.kill('SIGKILL');
  }
});
