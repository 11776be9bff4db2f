/**
 * The jsonl source replaying a file (no --follow): with --wait-clients N it reads nothing
 * until N Watch* streams are open, so the replay is seen by the client that was waited
 * for; when it is done it says how many events it admitted, of how many lines, and how
 * many it rejected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from './helpers/client';
import { startWatched } from './helpers/feeder';
import { seqLog, seqs } from './helpers/events';
import { fetchStats, startServe } from './helpers/serve';
import { delay, until, waitUntil } from './helpers/wait';

const BASE_ARGS = ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'jsonl'];
const EVENTS = 200;

test('jsonl source - --wait-clients 1 holds a file replay until a client is connected, which then gets all of it', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-jsonl-'));
  const file = path.join(dir, 'kubearmor.log');
  fs.writeFileSync(file, Array.from({ length: EVENTS }, (_, i) => JSON.stringify(seqLog(i + 1))).join('\n') + '\n');
  const serve = await startServe([...BASE_ARGS, '--jsonl', file, '--wait-clients', '1']);
  const conn = connect(serve.addresses.grpc);
  try {
    // Ample time for a source that does not wait to read the whole file.
    await delay(1000);
    const before = (await fetchStats(serve.addresses.metrics)).ingest.jsonl;
    assert.equal(before.events, 0, 'nothing read before a client is there');
    assert.equal(before.finished, false);
    const logs = conn.watch('WatchLogs', 'all');
    await logs.waitFor(EVENTS, 15_000);
    assert.deepEqual(seqs(logs), Array.from({ length: EVENTS }, (_, i) => i + 1));
    await waitUntil('the source finished', async () => (await fetchStats(serve.addresses.metrics)).ingest.jsonl.finished, 5_000);
  } finally {
    conn.close();
    const exit = await serve.stop('SIGTERM', 10_000);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});

test('jsonl source - "finished" counts the events admitted, the lines read and the lines rejected', { timeout: 30_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-jsonl-count-'));
  const file = path.join(dir, 'kubearmor.log');
  const lines = [
    JSON.stringify(seqLog(1)),
    '{"type": "ContainerLog", "hostPid": 2,',
    JSON.stringify(seqLog(3)),
    '',
    JSON.stringify({ ...seqLog(4), podname: 'lower-case n' }),
    JSON.stringify(seqLog(5)),
    '   ',
    'not json at all',
    JSON.stringify(seqLog(6)),
  ];
  fs.writeFileSync(file, lines.join('\n') + '\n');
  // Gated on the messages stream, so the finished line is published to it.
  const w = await startWatched({ source: ['jsonl'], jsonl: file, waitClients: 1 }, [['WatchMessages', '']], 'WatchMessages registered');
  try {
    const [messages] = w.watchers;
    const finished = (): string | undefined => messages.messages.map((m) => String(m.Message)).find((m) => m.startsWith('source jsonl finished'));
    await until('the finished message', () => finished() !== undefined, 10_000);
    assert.match(finished() ?? '', /^source jsonl finished: 4 events admitted of 7 lines read \(3 rejected as malformed_input, 0 dropped as ring_full\) in \d+\.\d{3} s$/);
    const s = w.feeder.stats().ingest.jsonl;
    assert.equal(s.events, 4);
    assert.equal(s.dropped.malformed_input, 3);
  } finally {
    await w.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
