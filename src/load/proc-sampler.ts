/**
 * CPU and RSS of the broker process, sampled from /proc/PID/stat and
 * /proc/PID/status (so all of its worker threads count), plus a lookup of the
 * PID that listens on a loopback TCP port, for when the broker was started
 * by someone else on this machine.
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface ProcSample {
  /** Seconds since the sampler started. */
  t: number;
  /** CPU use since the previous sample, in % of one core (200 = two cores busy). */
  cpuPct: number;
  /** The same for the broker's main thread alone (tid = pid: in armorfeed, the fan-out loop). */
  mainCpuPct: number;
  rssBytes: number;
}

export interface ProcSummary {
  pid: number;
  samples: ProcSample[];
  cpuSec: number;
  maxRssBytes: number;
  meanCpuPct: number;
  /** Mean CPU of the main thread alone, in % of one core. */
  mainThreadMeanCpuPct: number;
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on every common Linux). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime+stime in seconds from a /proc stat file, or undefined if it is gone. */
export function statCpuSeconds(file: string): number | undefined {
  try {
    const stat = fs.readFileSync(file, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** utime+stime of `pid` in seconds (all its threads), or undefined if it is gone. */
export function readCpuSeconds(pid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** utime+stime of each thread of `pid` (thread id -> seconds); empty once it is gone. */
export function readThreadCpuSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const s = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
    if (s !== undefined) out.set(Number(tid), s);
  }
  return out;
}

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
export function readMachineCpu(): { busy: number; total: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    // idle + iowait are not busy.
    return { busy: total - f[3] - (f[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** Busy share (0..100) of all the machine's cores since `from`, or null. */
export function machineBusyPctSince(from: { busy: number; total: number } | undefined): number | null {
  const now = readMachineCpu();
  if (from === undefined || now === undefined || now.total <= from.total) return null;
  return (100 * (now.busy - from.busy)) / (now.total - from.total);
}

/** VmRSS of `pid` in bytes, or undefined if it is gone. */
export function readRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

export class ProcSampler {
  private readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly start = performance.now();
  private readonly startCpu: number;
  private lastCpu: number;
  private lastAt: number;
  private readonly startMainCpu: number;
  private lastMainCpu: number;

  constructor(
    readonly pid: number,
    private readonly intervalMs = 500,
  ) {
    this.startCpu = readCpuSeconds(pid) ?? 0;
    this.lastCpu = this.startCpu;
    this.lastAt = this.start;
    this.startMainCpu = this.mainCpu() ?? 0;
    this.lastMainCpu = this.startMainCpu;
  }

  private mainCpu(): number | undefined {
    return statCpuSeconds(`/proc/${this.pid}/task/${this.pid}/stat`);
  }

  begin(): void {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  sample(): void {
    const cpu = readCpuSeconds(this.pid);
    const rss = readRssBytes(this.pid);
    const main = this.mainCpu() ?? this.lastMainCpu;
    if (cpu === undefined || rss === undefined) return;
    const now = performance.now();
    const dt = (now - this.lastAt) / 1000;
    this.samples.push({
      t: (now - this.start) / 1000,
      cpuPct: dt > 0 ? ((cpu - this.lastCpu) / dt) * 100 : 0,
      mainCpuPct: dt > 0 ? ((main - this.lastMainCpu) / dt) * 100 : 0,
      rssBytes: rss,
    });
    this.lastCpu = cpu;
    this.lastMainCpu = main;
    this.lastAt = now;
  }

  finish(): ProcSummary {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.sample();
    const cpuSec = this.lastCpu - this.startCpu;
    const elapsed = (this.lastAt - this.start) / 1000;
    return {
      pid: this.pid,
      samples: this.samples,
      cpuSec,
      maxRssBytes: this.samples.reduce((m, s) => Math.max(m, s.rssBytes), 0),
      meanCpuPct: elapsed > 0 ? (cpuSec / elapsed) * 100 : 0,
      mainThreadMeanCpuPct: elapsed > 0 ? ((this.lastMainCpu - this.startMainCpu) / elapsed) * 100 : 0,
    };
  }
}

export interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** Kernel state in hex, e.g. '0A' = LISTEN, '01' = ESTABLISHED. */
  state: string;
  inode: string;
}

/** Every TCP socket of this network namespace, from /proc/net/tcp and tcp6. */
export function tcpSockets(): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address and rem_address are HEXIP:HEXPORT; field 9 is the socket inode.
      if (f.length <= 9) continue;
      out.push({ localPort: parseInt(f[1].split(':')[1], 16), remotePort: parseInt(f[2].split(':')[1], 16), state: f[3], inode: f[9] });
    }
  }
  return out;
}

/** The PID of the process that listens on TCP `port`, if it is ours to see; undefined otherwise. */
export function findListenerPid(port: number): number | undefined {
  const inodes = new Set(tcpSockets().filter((s) => s.state === '0A' && s.localPort === port).map((s) => s.inode));
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m !== null && inodes.has(m[1])) return Number(pid);
      } catch {
        // The fd closed while we looked: skip it.
      }
    }
  }
  return undefined;
}
