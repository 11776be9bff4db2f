/**
 * `--source jsonl --follow` on a file that is rotated: renamed away and created again
 * (logrotate's default), or truncated and written again (copytruncate), however quickly.
 * Every line of both files is read, and the rotation is counted.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFeeder } from './helpers/feeder';
import { until } from './helpers/wait';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-follow-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function lines(from: number, count: number): string {
  let out = '';
  for (let i = from; i < from + count; i++) {
    out += JSON.stringify({ type: 'ContainerLog', source: '/bin/sh', operation: 'File', resource: `/etc/f-${i}`, hostPid: i }) + '\n';
  }
  return out;
}

test('follow - a file renamed away and created again is read whole, and counted as a rotation', async () => {
  const file = path.join(dir, 'renamed.jsonl');
  fs.writeFileSync(file, lines(1, 3000));
  const f = await startFeeder({ source: ['jsonl'], jsonl: file, follow: true });
  try {
    await until('the first file read', () => f.stats().ingest.jsonl.events === 3000, 10_000);
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, lines(100_001, 5000));
    await until('the new file read', () => f.stats().ingest.jsonl.events === 8000, 10_000);
    assert.equal(f.stats().ingest.jsonl.rotations, 1);
    assert.equal(f.stats().ingest.jsonl.dropped.malformed_input, 0);
  } finally {
    await f.close();
  }
});

test('follow - a file truncated and written again within one poll is read from its start', async () => {
  const file = path.join(dir, 'truncated.jsonl');
  fs.writeFileSync(file, lines(1, 3000));
  const f = await startFeeder({ source: ['jsonl'], jsonl: file, follow: true });
  try {
    await until('the first content read', () => f.stats().ingest.jsonl.events === 3000, 10_000);
    // Truncate and write more than was there, in one go: the file never looks shorter.
    fs.writeFileSync(file, lines(100_001, 8000));
    await until('the rewritten content read from its start', () => f.stats().ingest.jsonl.events >= 11_000, 10_000);
    assert.equal(f.stats().ingest.jsonl.events, 11_000, 'no line read twice or skipped');
    assert.equal(f.stats().ingest.jsonl.rotations, 1);
  } finally {
    await f.close();
  }
});

test('follow - a file that only grows is not taken for a rotated one', async () => {
  const file = path.join(dir, 'grows.jsonl');
  fs.writeFileSync(file, lines(1, 10));
  const f = await startFeeder({ source: ['jsonl'], jsonl: file, follow: true });
  try {
    await until('the first lines read', () => f.stats().ingest.jsonl.events === 10, 10_000);
    for (let k = 0; k < 5; k++) {
      fs.appendFileSync(file, lines(1000 + k * 100, 100));
      await until('appended lines read', () => f.stats().ingest.jsonl.events === 10 + (k + 1) * 100, 10_000);
    }
    assert.equal(f.stats().ingest.jsonl.rotations, 0);
  } finally {
    await f.close();
  }
});

test('follow - rotating a file over and over gives at most one INFO line a second, the rest counted', { timeout: 30_000 }, async () => {
  const { connect } = await import('./helpers/client');
  const file = path.join(dir, 'churn.jsonl');
  fs.writeFileSync(file, lines(1, 1));
  const f = await startFeeder({ source: ['jsonl'], jsonl: file, follow: true });
  const tc = connect(f.addresses.grpc);
  const messages = tc.watch('WatchMessages', '');
  try {
    await until('the first line read', () => f.stats().ingest.jsonl.events === 1, 10_000);
    const started = Date.now();
    for (let k = 0; k < 12; k++) {
      fs.renameSync(file, `${file}.${k}`);
      fs.writeFileSync(file, lines(1000 + k, 1));
      await until(`rotation ${k + 1} seen`, () => f.stats().ingest.jsonl.rotations === k + 1, 10_000);
    }
    const rotationLines = (): string[] => messages.messages.map((m) => String(m.Message)).filter((m) => m.includes('reading the new file from its start'));
    assert.equal(f.stats().ingest.jsonl.rotations, 12);
    // One a second at most (plus the first): 12 lines only if the rotations took 11 s or more.
    const allowed = Math.ceil((Date.now() - started) / 1000) + 1;
    assert.ok(allowed < 12, `the rotations took too long to tell (${Date.now() - started} ms)`);
    assert.ok(rotationLines().length <= allowed, `${rotationLines().length} INFO lines for 12 rotations in ${Date.now() - started} ms`);
  } finally {
    messages.cancel();
    tc.close();
    await f.close();
  }
});
