/**
 * The Python grpcio client (test/interop/feeder_client.py): its message stubs generated
 * with protoc into a temp directory, and a bounded run of it whose JSON lines are parsed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './repo';

export const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(repoRoot, 'test', 'interop', 'feeder_client.py');
const KUBEARMOR_PROTO_DIR = path.join(repoRoot, 'proto');
const HEALTH_PROTO_DIR = path.join(repoRoot, 'test', 'interop');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: JsonObject[];
  stderr: string;
  /** Raw stdout, for failure messages. */
  stdout: string;
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks that protoc and python3-grpcio are there, generates kubearmor_pb2 and
 * health_pb2 into a new temp directory and returns it (the caller removes it).
 */
export function generatePythonStubs(): string {
  const need = 'install protobuf-compiler, python3-grpcio and python3-protobuf (.ci/run does)';
  try {
    execFileSync('protoc', ['--version'], { stdio: 'pipe', timeout: 10_000 });
  } catch (err) {
    assert.fail(`protoc is not runnable: ${(err as Error).message}; ${need}`);
  }
  try {
    execFileSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'pipe', timeout: 20_000 });
  } catch (err) {
    assert.fail(`${PYTHON} cannot import grpc and google.protobuf: ${(err as Error).message}; ${need}`);
  }
  const genDir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-pystubs-'));
  execFileSync(
    'protoc',
    [
      `--python_out=${genDir}`, '-I', KUBEARMOR_PROTO_DIR, '-I', HEALTH_PROTO_DIR,
      path.join(KUBEARMOR_PROTO_DIR, 'kubearmor.proto'), path.join(HEALTH_PROTO_DIR, 'health.proto'),
    ],
    { stdio: 'pipe', timeout: 20_000 },
  );
  // Generated code and the protobuf runtime must agree; say so here rather than mid-test.
  try {
    execFileSync(PYTHON, ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import kubearmor_pb2, health_pb2', genDir], {
      stdio: 'pipe',
      timeout: 20_000,
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    assert.fail(`protoc's Python output does not import with this python3-protobuf (version skew?):\n${stderr}`);
  }
  return genDir;
}

/** Runs feeder_client.py to completion and parses its JSON lines; SIGKILLed after `killAfterS`. */
export function runFeederClient(args: string[], killAfterS: number): Promise<ClientRun> {
  return new Promise<ClientRun>((resolve, reject) => {
    const child = spawn(PYTHON, [CLIENT, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterS * 1000);
    child.on('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      const lines: JsonObject[] = [];
      for (const line of stdout.split('\n')) {
        if (line.trim() === '') continue;
        let parsed: Json;
        try {
          parsed = JSON.parse(line) as Json;
        } catch {
          reject(new Error(`feeder_client.py printed a non-JSON line: ${line}\nstderr:\n${stderr}`));
          return;
        }
        if (!isObject(parsed)) {
          reject(new Error(`feeder_client.py printed a non-object line: ${line}`));
          return;
        }
        lines.push(parsed);
      }
      resolve({ code, signal, lines, stderr, stdout });
    });
  });
}

export function describeRun(run: ClientRun): string {
  const summary = run.lines.find((l) => l.kind === 'summary');
  return `exit=${run.code} signal=${run.signal}\nsummary: ${JSON.stringify(summary)}\nstderr:\n${run.stderr.slice(-2048)}`;
}
