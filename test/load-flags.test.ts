import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cliMainPath } from '../src/load/broker-process';

function armorfeed(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliMainPath, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('load flags - a non-loopback gRPC address is refused with exit 2 before anything connects', () => {
  const r = armorfeed('load', '--addr', '10.1.2.3:32767', '--duration', '1s');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--addr: 10\.1\.2\.3:32767 is not a loopback address/);
});

test('load flags - non-loopback ingest and stats addresses are refused with exit 2', () => {
  const ingest = armorfeed('load', '--addr', '127.0.0.1:1', '--ingest', 'tcp://192.168.1.5:9000');
  assert.equal(ingest.status, 2);
  assert.match(ingest.stderr, /--ingest: .* is not a loopback address/);
  const stats = armorfeed('load', '--addr', '127.0.0.1:1', '--stats', 'http://example.com:9090');
  assert.equal(stats.status, 2);
  assert.match(stats.stderr, /--stats: .* is not a loopback address/);
});

test('load flags - unbounded or malformed runs are refused with exit 2', () => {
  assert.equal(armorfeed('load', '--duration', '2h').status, 2);
  assert.equal(armorfeed('load', '--slow', 'two').status, 2);
  assert.equal(armorfeed('load', '--clients', '2', '--slow', '3:1ms').status, 2);
  assert.equal(armorfeed('load', '--burst', '100', '--rate', '0', '--ingest', 'tcp://127.0.0.1:1').status, 2);
  assert.equal(armorfeed('tune', '--queue-sizes', '1,2,3,4,5,6,7,8,9,10', '--rates', '1,2,3', '--max-time', '30s').status, 2);
});

test('load flags - a dead gRPC target is an RPC failure: exit 1', () => {
  // Port 1 on loopback: nothing listens there, so HealthCheck fails.
  const r = armorfeed('load', '--addr', '127.0.0.1:1', '--clients', '1', '--duration', '1s');
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAILURE: client 0: .*UNAVAILABLE|FAILURE: client 0: 14 UNAVAILABLE/);
});
