/**
 * The Unix socket source of real `armorfeed serve` processes: a second instance given the
 * socket path of a live one refuses to start (exit 2, ERR_SOCKET_IN_USE naming the path)
 * and leaves the live one's socket alone; a stale socket, left by a killed instance, is
 * replaced. The socket file gets --socketMode (0660 by default, whatever the umask) and
 * --socketGroup; bad values exit 2 naming the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { awaitExit, exitCodeOf } from './helpers/child';
import { connect } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { armorfeedMain, fetchStats, startProcess, startServe } from './helpers/serve';
import { connectTo, frameOf, write } from './helpers/tcp';
import { waitUntil } from './helpers/wait';

const BASE_ARGS = ['serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '0', '--metricsPort', '0', '--source', 'socket'];

/** Runs `armorfeed ARGS` to its exit (bounded); returns the status and stderr. */
async function runToExit(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [armorfeedMain, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await awaitExit(child, exitCodeOf(child), timeoutMs);
  return { code, stderr };
}

test('socket source - a second instance on a live socket path exits 2 with ERR_SOCKET_IN_USE; the first keeps its socket; a stale socket is replaced', { timeout: 90_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-socket-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sockPath = path.join(dir, 'in.sock');
  const first = await startServe([...BASE_ARGS, '--socket', sockPath]);
  const conn = connect(first.addresses.grpc);
  try {
    const logs = conn.watch('WatchLogs', 'all');
    await waitUntil('the WatchLogs stream registered', async () => (await fetchStats(first.addresses.metrics)).clients.some((c) => c.open), 10_000);
    const inode = fs.statSync(sockPath).ino;

    const second = await runToExit([...BASE_ARGS, '--socket', sockPath], 15_000);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /ERR_SOCKET_IN_USE/);
    assert.ok(second.stderr.includes(`another process is listening on ${sockPath}`), second.stderr);
    assert.doesNotMatch(second.stderr, /armorfeed: listening/);

    // The first instance still owns the path and takes events through it.
    assert.equal(fs.statSync(sockPath).ino, inode, 'the socket file was not replaced');
    const sock = await connectTo(sockPath);
    try {
      await write(sock, frameOf(seqLog(1)));
      await logs.waitFor(1, 5_000);
    } finally {
      sock.destroy();
    }
    assert.deepEqual(seqs(logs), [1]);
  } finally {
    conn.close();
    // Killed without a chance to clean up, the first instance leaves a stale socket behind.
    await first.stop('SIGKILL');
  }

  assert.ok(fs.statSync(sockPath).isSocket(), 'a stale socket file is left');
  const third = await startServe([...BASE_ARGS, '--socket', sockPath]);
  try {
    const sock = await connectTo(sockPath);
    sock.destroy();
  } finally {
    const exit = await third.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0, exit.stderr.slice(-2000));
  }
});

/** `armorfeed ARGS` started from a shell under umask 000, waiting for the listening line. */
function serveUnderUmask000(args: string[]): ReturnType<typeof startProcess> {
  const quoted = [process.execPath, armorfeedMain, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return startProcess('/bin/sh', ['-c', `umask 000 && exec ${quoted}`]);
}

/** A group of this machine other than the process's own, by name, when there is one. */
function anotherGroup(): { name: string; gid: number } | undefined {
  for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name !== undefined && name !== '' && /^\d+$/.test(gid ?? '') && Number(gid) !== process.getgid?.()) return { name, gid: Number(gid) };
  }
  return undefined;
}

test('socket source - under umask 000 the socket file is 0660 by default, and --socketMode and --socketGroup apply', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-socket-mode-'));
  try {
    const sockPath = path.join(dir, 'in.sock');
    const plain = await serveUnderUmask000([...BASE_ARGS, '--socket', sockPath]);
    try {
      const st = fs.statSync(sockPath);
      assert.ok(st.isSocket());
      assert.equal((st.mode & 0o7777).toString(8), '660');
      assert.deepEqual(fs.readdirSync(dir), ['in.sock'], 'no temporary entries left beside it');
    } finally {
      const exit = await plain.stop('SIGTERM', 10_000);
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    }
    assert.equal(fs.existsSync(sockPath), false, 'a clean stop removes the socket file');

    // As root another group can be given; otherwise the process's own (by number).
    const group = process.getuid?.() === 0 ? anotherGroup() : undefined;
    const gid = group?.gid ?? process.getgid?.() ?? 0;
    const custom = await serveUnderUmask000([...BASE_ARGS, '--socket', sockPath, '--socketMode', '0600', '--socketGroup', group?.name ?? String(gid)]);
    try {
      const st = fs.statSync(sockPath);
      assert.equal((st.mode & 0o7777).toString(8), '600');
      assert.equal(st.gid, gid);
    } finally {
      const exit = await custom.stop('SIGTERM', 10_000);
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('socket source - a bad --socketMode or an unknown --socketGroup exits 2 naming the key', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-socket-bad-'));
  try {
    const sockPath = path.join(dir, 'in.sock');
    for (const [flag, value, key] of [
      ['--socketMode', '0999', 'socketMode'],
      ['--socketMode', '01777', 'socketMode'],
      ['--socketMode', 'rw-rw----', 'socketMode'],
      ['--socketGroup', 'no-such-group-armorfeed', 'socketGroup'],
    ]) {
      const r = await runToExit([...BASE_ARGS, '--socket', sockPath, flag, value], 15_000);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`ERR_CONFIG_INVALID: ${key}\\b`), r.stderr);
      assert.doesNotMatch(r.stderr, /armorfeed: listening/);
      assert.equal(fs.existsSync(sockPath), false);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
