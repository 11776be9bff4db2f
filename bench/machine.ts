/**
 * The machine and the versions a benchmark ran on, printed before any number: a ratio
 * means little without them.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readMachineCpu } from '../src/load/proc-sampler';

export const PACKAGES = ['@grpc/grpc-js', 'protobufjs', 'msgpackr', 'piscina', 'tinybench'] as const;

export interface MachineInfo {
  cpuModel: string;
  logicalCpus: number;
  availableParallelism: number;
  ramGiB: number;
  os: string;
  kernel: string;
  arch: string;
  node: string;
  v8: string;
  packages: Record<string, string>;
  gitCommit: string;
  /** 1, 5 and 15 minute load averages when the run started: other work skews every number. */
  loadAverage: number[];
}

function cpuModel(): string {
  const fromNode = os.cpus()[0]?.model?.trim() ?? '';
  // Some hypervisors report only the family ("AMD EPYC"); add what /proc/cpuinfo knows.
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    const mhz = field('cpu MHz');
    const family = field('cpu family');
    const model = field('model');
    const extra = [family !== undefined && model !== undefined ? `family ${family} model ${model}` : undefined, mhz !== undefined ? `${Number(mhz).toFixed(0)} MHz` : undefined]
      .filter((s) => s !== undefined)
      .join(', ');
    return extra === '' ? fromNode : `${fromNode} (${extra})`;
  } catch {
    return fromNode;
  }
}

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty !== undefined) return pretty;
  } catch {
    // not Linux, or no os-release: fall back to the kernel's name
  }
  return `${os.type()}`;
}

function packageVersion(root: string, name: string): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

function gitCommit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty === '' ? head : `${head} (uncommitted changes)`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export function machineInfo(root: string): MachineInfo {
  return {
    cpuModel: cpuModel(),
    logicalCpus: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    kernel: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    v8: process.versions.v8,
    packages: Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(root, p)])),
    gitCommit: gitCommit(root),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function formatMachine(m: MachineInfo): string {
  return [
    `cpu:      ${m.cpuModel}`,
    `cores:    ${m.logicalCpus} logical (available parallelism ${m.availableParallelism})`,
    `ram:      ${m.ramGiB} GiB`,
    `os:       ${m.os}; kernel ${m.kernel} (${m.arch})`,
    `node:     ${m.node} (v8 ${m.v8})`,
    `packages: ${Object.entries(m.packages).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `commit:   ${m.gitCommit}`,
    `load:     ${m.loadAverage.join(' / ')} (1 / 5 / 15 min) at start${busyWarning(m.loadAverage[0], m.availableParallelism)}`,
  ].join('\n');
}

/** A warning when other processes are using a good part of the CPUs. */
export function busyWarning(load: number, cpus: number): string {
  return load > cpus / 2 ? ` -- WARNING: machine busy (load ${load} on ${cpus} CPUs), numbers are skewed` : '';
}

/** The whole machine's CPU (all cores, every process) in seconds, busy and in all, from /proc/stat. */
export interface MachineCpu {
  busyS: number;
  totalS: number;
}

export function machineCpu(): MachineCpu | undefined {
  const c = readMachineCpu();
  return c === undefined ? undefined : { busyS: c.busy / 100, totalS: c.total / 100 };
}

/** Over a phase: how busy the machine was, and its CPU (every process) per event, in us. */
export interface PhaseCpu {
  busy: number;
  usPerEvent: number;
}

export function phaseCpu(from: MachineCpu | undefined, to: MachineCpu | undefined, events: number): PhaseCpu | undefined {
  if (from === undefined || to === undefined || to.totalS <= from.totalS || events <= 0) return undefined;
  return { busy: (to.busyS - from.busyS) / (to.totalS - from.totalS), usPerEvent: ((to.busyS - from.busyS) / events) * 1e6 };
}
