/**
 * Ingest thread (one per configured source). Runs the source's I/O, validates every
 * event in this thread and writes the accepted ones into its ring; the main thread
 * never parses input. Which source runs is chosen by workerData.kind.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ArmorfeedError, ConfigError, InputError, SocketInUseError, type ErrorCode } from '../errors';
import { nowMicros } from '../wire/time';
import { Admission } from './admission';
import { encodeFrame, FrameReader } from './frames';
import { LineReader } from './lines';
import { allocateRing, HEARTBEAT_INTERVAL_MS, RingConsumer } from '../ring';
import { SyntheticFrames, warmUpEvents } from './synthetic';
import type { SourceWorkerData, ToSource } from './protocol';
import { runTestHook } from '../testHooks';

const data = workerData as SourceWorkerData;
const port = parentPort as NonNullable<typeof parentPort>;
/** How long a source that was told to stop keeps waiting for room for what it has read. */
const STOP_GRACE_MS = 1500;
let stopDeadline = Infinity;
const admission = new Admission(data.ring, port, data.whenFull, giveUpWaiting);
const stopHandlers: (() => Promise<void> | void)[] = [];
let startGate: (() => void) | undefined;

function onControl(msg: ToSource): void {
  if (msg.type === 'start') {
    startGate?.();
    startGate = undefined;
  } else if (msg.type === 'stop' && stopDeadline === Infinity) {
    stopDeadline = performance.now() + STOP_GRACE_MS;
    // Deferred: a stop read while waiting for room must not close sockets under the
    // handler that is still admitting their frames.
    setImmediate(() => void stop());
  }
}
port.on('message', onControl);
// The main thread reads the beats to tell a live thread from a wedged one (ring/layout.ts).
setInterval(() => admission.producer.beat(), HEARTBEAT_INTERVAL_MS).unref();

/**
 * Asked while this thread waits for room in a full ring (backpressure blocks the event
 * loop, so control messages are read here). Waiting goes on for as long as the pipeline
 * needs; only a stop, once its grace has run out, turns the wait into a counted drop.
 */
function giveUpWaiting(): boolean {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) onControl(m.message as ToSource);
  return performance.now() > stopDeadline;
}

async function stop(): Promise<void> {
  for (const h of stopHandlers) await h();
  admission.close();
  admission.post({ type: 'stopped' });
  port.close();
}

function fatal(code: ErrorCode, message: string): void {
  admission.post({ type: 'fatal', code, message });
}

/** Sample events of every synthetic shape, for Admission.warmUp. */
/**
 * Runs the ingest path (framing, validation, the ring write) over sample events of every
 * synthetic shape, into a scratch ring, before the first real frame. V8 compiles hot code
 * only after it has run a while; on the socket path the first few hundred milliseconds of
 * traffic otherwise run in the interpreter in this thread, and every event behind them
 * waits (p99 at 50,000 events/s: 23-33 ms cold against 8 ms warm).
 */
function warmUpAdmission(): void {
  const now = nowMicros();
  const events = warmUpEvents({ cluster: data.cluster, host: data.host, alertEvery: 3 }, now, (v) => admission.pack(v));
  const chunk = Buffer.concat(events.map((e) => encodeFrame(e)));
  const ring = allocateRing(256 * 1024) // one round of samples at a time;
  const scratch = new Admission(ring, port, data.whenFull, () => true);
  const consumer = new RingConsumer(ring);
  // Samples are ~0.5-0.9 KB; the scratch reader takes them whatever maxEventBytes says.
  const reader = new FrameReader(1 << 20);
  for (let round = 0; round < 60; round++) {
    reader.push(chunk, (frame) => void scratch.admitFrame(frame, now, 'warm-up'));
    const span = consumer.claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (span !== null) consumer.release(span.end);
  }
}

// ---- msgpack frames over a Unix socket or TCP ----

function serveFrames(): void {
  warmUpAdmission();
  const sockets = new Set<net.Socket>();
  // Bytes of incomplete frames held across this source's connections (ingestBufferedBytes).
  let bufferedAll = 0;
  const server = net.createServer((socket) => {
    const peer = data.kind === 'tcp' ? `${socket.remoteAddress}:${socket.remotePort}` : `unix:${data.socket}`;
    if (sockets.size >= data.ingestMaxConnections) {
      // Refused with a line that says why, and counted: the producers already connected keep their place.
      const reason = `${data.ingestMaxConnections} producer connections are open (ingestMaxConnections)`;
      admission.post({ type: 'disconnected', peer, code: 'ERR_INGEST_TOO_MANY_CONNECTIONS', message: reason });
      socket.on('error', () => socket.destroy());
      socket.end(`armorfeed: ERR_INGEST_TOO_MANY_CONNECTIONS: ${reason}\n`);
      socket.destroySoon();
      return;
    }
    sockets.add(socket);
    admission.producer.countConnection(1);
    const reader = new FrameReader(data.maxEventBytes);
    let held = 0;
    const holdBuffered = (): void => {
      bufferedAll += reader.buffered - held;
      held = reader.buffered;
    };
    let hungUp = false;
    // A frame begun must end within ingestFrameTimeoutMs (a producer stuck mid-frame, or a
    // slowloris), and with ingestIdleTimeoutMs a connection must send something that often.
    let frameTimer: NodeJS.Timeout | undefined;
    const close = (code: 'ERR_INGEST_FRAME_TIMEOUT' | 'ERR_INGEST_IDLE_TIMEOUT' | 'ERR_INGEST_BUFFER_CAP', message: string): void => {
      if (hungUp) return;
      hungUp = true;
      clearTimeout(frameTimer);
      const partial = reader.buffered > 0;
      if (partial) admission.reject(new InputError('ERR_INPUT_TRUNCATED', `${message}: ${reader.buffered} bytes into a frame dropped`), peer);
      reader.clear();
      holdBuffered();
      admission.post({ type: 'disconnected', peer, code, message });
      socket.removeAllListeners('data');
      socket.end(`armorfeed: ${code}: ${message}\n`);
      socket.destroySoon();
    };
    if (data.ingestIdleTimeoutMs > 0) {
      socket.setTimeout(data.ingestIdleTimeoutMs, () => close('ERR_INGEST_IDLE_TIMEOUT', `nothing received for ${data.ingestIdleTimeoutMs} ms (ingestIdleTimeoutMs)`));
    }
    const armFrameTimer = (): void => {
      if (data.ingestFrameTimeoutMs === 0) return;
      if (reader.buffered === 0) {
        clearTimeout(frameTimer);
        frameTimer = undefined;
      } else if (frameTimer === undefined) {
        frameTimer = setTimeout(() => close('ERR_INGEST_FRAME_TIMEOUT', `a frame begun ${data.ingestFrameTimeoutMs} ms ago is still incomplete (ingestFrameTimeoutMs)`), data.ingestFrameTimeoutMs);
      }
    };
    // The stream can no longer be trusted: say why, then hang up on this peer only.
    const hangUp = (err: InputError, discarded: number): void => {
      hungUp = true;
      const after = discarded > 0 ? `; ${discarded} frame${discarded === 1 ? '' : 's'} after it discarded` : '';
      admission.post({ type: 'disconnected', peer, code: err.code, message: `${err.message}${after}` });
      socket.removeAllListeners('data');
      socket.end(`armorfeed: ${err.code}: ${err.message}\n`);
      socket.destroySoon();
    };
    socket.on('data', (chunk: Buffer) => {
      const now = nowMicros();
      let garbage: InputError | undefined;
      // Frames after the one that ends the connection: whole ones, and one for the rest.
      let discarded = 0;
      try {
        reader.push(chunk, (frame) => {
          if (garbage !== undefined) {
            discarded++;
            return;
          }
          // A length-0 frame holds no event, but the next 4 bytes are a length again.
          if (frame.length === 0) {
            admission.reject(new InputError('ERR_INPUT_MALFORMED_FRAME', 'frame length 0: a frame must hold one msgpack map'), peer);
            return;
          }
          runTestHook(frame);
          // A bad event costs that event only, but bytes that are not msgpack at all
          // mean the peer does not speak this protocol.
          const r = admission.admitFrame(frame, now, peer);
          if (r instanceof InputError && r.code === 'ERR_INPUT_MALFORMED_FRAME') garbage = r;
        });
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        if (garbage === undefined) {
          admission.reject(err, peer);
          garbage = err;
        } else discarded++;
      }
      if (garbage === undefined) {
        holdBuffered();
        armFrameTimer();
        if (bufferedAll > data.ingestBufferedBytes) {
          close('ERR_INGEST_BUFFER_CAP', `incomplete frames on this source hold ${bufferedAll} bytes, over ${data.ingestBufferedBytes} (ingestBufferedBytes)`);
        }
        return;
      }
      if (reader.buffered > 0) discarded++;
      reader.clear();
      holdBuffered();
      clearTimeout(frameTimer);
      if (discarded > 0) {
        admission.reject(new InputError('ERR_INPUT_DISCARDED', `${discarded} frames after ${garbage.code} discarded`), peer, discarded);
      }
      hangUp(garbage, discarded);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      admission.producer.countConnection(-1);
      clearTimeout(frameTimer);
      if (!hungUp && reader.buffered > 0) {
        admission.reject(new InputError('ERR_INPUT_TRUNCATED', `connection closed ${reader.buffered} bytes into a frame`), peer);
        reader.clear();
      }
      holdBuffered();
    });
  });
  let socketInode = -1;
  if (data.kind === 'socket') {
    void listenOnSocket(server).then(
      (inode) => {
        socketInode = inode;
        admission.post({ type: 'ready', address: data.socket });
      },
      (err: ArmorfeedError) => {
        server.close();
        fatal(err.code, err.message);
      },
    );
  } else {
    server.on('error', (err) => fatal('ERR_CONFIG_INVALID', `${data.kind} source cannot listen: ${err.message}`));
    const m = /^(.*):(\d+)$/.exec(data.tcp) as RegExpExecArray;
    const host = m[1].replace(/^\[|\]$/g, '');
    server.listen(Number(m[2]), host, () => {
      const a = server.address() as net.AddressInfo;
      admission.post({ type: 'ready', address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
    });
  }
  stopHandlers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.end();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 200).unref();
        // The socket was linked into place: the file at the path is removed here, and
        // only while it is still this listener's.
        if (socketInode >= 0) unlinkIfInode(data.socket, socketInode);
      }),
  );
}

/** Longest Unix socket path (sun_path holds 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Listens on data.socket with socketMode and socketGid from the first moment it can be
 * reached: the socket is bound in a new private directory (0700) beside the path, given
 * its mode and group there, then hard-linked into place. A plain bind would create it with
 * 0777 minus the umask (0777 under umask 000) until a chmod, and process.umask is
 * process-wide and cannot be changed from a worker thread. link(), unlike rename(), fails
 * rather than replace a socket another process put there meanwhile. Resolves with the
 * socket's inode; rejects with an ArmorfeedError.
 */
async function listenOnSocket(server: net.Server): Promise<number> {
  const target = data.socket;
  await claimSocketPath(target);
  let dir: string | undefined;
  try {
    dir = fs.mkdtempSync(path.join(path.dirname(target), '.armorfeed-'));
  } catch (err) {
    throw new ConfigError('socket', `cannot create ${target}: ${(err as Error).message}`);
  }
  let bindPath = path.join(dir, 's');
  if (Buffer.byteLength(bindPath) > MAX_SOCKET_PATH_BYTES) {
    // No room for the private directory in a socket path: bind in place, chmod at once.
    fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
    bindPath = target;
  }
  let step = 'listen on';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    step = `set mode ${data.socketMode.toString(8).padStart(4, '0')} (socketMode) on`;
    fs.chmodSync(bindPath, data.socketMode);
    if (data.socketGid >= 0) {
      step = `give to group ${data.socketGid} (socketGroup: the user must be root or a member of it)`;
      fs.chownSync(bindPath, -1, data.socketGid);
    }
    if (dir !== undefined) {
      step = 'link into place';
      try {
        fs.linkSync(bindPath, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        throw new SocketInUseError(`socket: another process is listening on ${target}; stop it or choose another --socket`);
      }
      fs.unlinkSync(bindPath);
    }
    return fs.statSync(target).ino;
  } catch (err) {
    if (err instanceof ArmorfeedError) throw err;
    throw new ConfigError('socket', `cannot ${step} ${target}: ${(err as Error).message}`);
  } finally {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes `file` if it is still the inode `inode` (not a socket another process put there since). */
function unlinkIfInode(file: string, inode: number): void {
  try {
    if (fs.statSync(file).ino === inode) fs.unlinkSync(file);
  } catch {
    // Gone already.
  }
}

/** How long a socket that exists may take to accept a connection before it counts as in use. */
const SOCKET_PROBE_MS = 1000;

/**
 * Makes `socketPath` free to listen on: a socket file that no process listens on any more
 * (connecting is refused) is removed; one that accepts a connection belongs to a live
 * process (another armorfeed, say), which must not lose it, so start-up is refused
 * (ERR_SOCKET_IN_USE), as it is for a path that is not a socket.
 */
async function claimSocketPath(socketPath: string): Promise<void> {
  let probed: fs.Stats;
  try {
    probed = fs.statSync(socketPath);
  } catch {
    return; // Nothing there.
  }
  if (!probed.isSocket()) {
    throw new ConfigError('socket', `${socketPath} exists and is not a socket; remove it or choose another --socket`);
  }
  const outcome = await new Promise<string>((resolve) => {
    const probe = net.connect(socketPath);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve('ETIMEDOUT');
    }, SOCKET_PROBE_MS);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve('connected');
    });
    probe.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
  if (outcome === 'ECONNREFUSED' || outcome === 'ENOENT') {
    // Only the stale socket probed: an instance starting beside this one may have put its
    // live one there since (this one's link then fails: ERR_SOCKET_IN_USE).
    unlinkIfInode(socketPath, probed.ino);
    return;
  }
  // Connected, or a full backlog (EAGAIN) or a wait: a process holds it.
  if (outcome === 'connected' || outcome === 'EAGAIN' || outcome === 'ETIMEDOUT') {
    throw new SocketInUseError(`socket: another process is listening on ${socketPath}; stop it or choose another --socket`);
  }
  throw new ConfigError('socket', `cannot tell whether ${socketPath} is in use (connecting to it failed: ${outcome}); remove it or choose another --socket`);
}

// ---- JSON lines (upstream logPath format) from a file or stdin ----

/** Bytes of a followed file's start kept to tell a rewritten file from a grown one. */
const HEAD_BYTES = 256;

function readJsonLines(): void {
  warmUpAdmission();
  const fromStdin = data.jsonl === '-';
  const peer = fromStdin ? 'stdin' : data.jsonl;
  const lines = new LineReader(data.maxEventBytes);
  let position = 0;
  let stopped = false;
  let lineCount = 0;
  let started = Date.now();

  const onOversized = (): void => {
    lineCount++;
    admission.reject(new InputError('ERR_INPUT_OVERSIZED', `line over the limit of ${data.maxEventBytes} bytes (maxEventBytes)`), peer);
  };
  const onText = (text: string): void => {
    const now = nowMicros();
    lines.push(text, (line) => handleLine(line, now), onOversized);
  };

  const handleLine = (raw: string, now: number): void => {
    const line = raw.trim();
    if (line === '') return;
    lineCount++;
    if (line.length > data.maxEventBytes || Buffer.byteLength(line) > data.maxEventBytes) {
      admission.reject(new InputError('ERR_INPUT_OVERSIZED', `line ${lineCount} is over the limit of ${data.maxEventBytes} bytes (maxEventBytes)`), peer);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      admission.reject(new InputError('ERR_INPUT_INVALID_JSON', `line ${lineCount} is not JSON: ${(err as Error).message}`), peer);
      return;
    }
    admission.admit(value, now, peer);
  };

  const finish = (): void => {
    lines.end((line) => handleLine(line, nowMicros()));
    const { queued, rejected, ringFull } = admission.counts;
    admission.post({ type: 'finished', unit: 'lines read', read: lineCount, events: queued, rejected, ringFull, elapsedMs: Date.now() - started });
  };

  if (fromStdin) {
    const stream = fs.createReadStream('', { fd: 0, autoClose: false, encoding: 'utf8' });
    stream.on('error', (err) => fatal('ERR_CONFIG_INVALID', `jsonl: cannot read stdin: ${err.message}`));
    stopHandlers.push(() => {
      stream.destroy();
    });
    admission.post({ type: 'ready', address: 'stdin' });
    // Nothing is read before the gate opens (a stream without a 'data' listener waits).
    whenStarted(() => {
      started = Date.now();
      stream.on('data', (t) => onText(t as string));
      stream.on('end', finish);
    });
    return;
  }

  let fd: number;
  try {
    fd = fs.openSync(data.jsonl, 'r');
  } catch (err) {
    fatal('ERR_CONFIG_INVALID', `jsonl: cannot open ${data.jsonl}: ${(err as Error).message}`);
    return;
  }
  const buf = Buffer.allocUnsafe(1 << 16);
  let decoder = new TextDecoder('utf-8');
  let inode = fs.fstatSync(fd).ino;
  // The file's first bytes as read: a file truncated and written again between two polls
  // is no shorter than before, but it starts differently (Vector's checksum fingerprint).
  let head = Buffer.alloc(0);
  const samePrefix = (): boolean => {
    if (head.length === 0) return true;
    const now = Buffer.allocUnsafe(head.length);
    return fs.readSync(fd, now, 0, head.length, 0) === head.length && now.equals(head);
  };
  const restart = (how: 'renamed' | 'truncated'): void => {
    // A last line without its newline ends with its file.
    lines.end((line) => handleLine(line, nowMicros()));
    decoder = new TextDecoder('utf-8');
    position = 0;
    head = Buffer.alloc(0);
    admission.producer.countRotation();
    admission.post({ type: 'rotated', path: data.jsonl, how });
  };
  /** Whether the followed path now names another file, or this one was cut back: checked before reading on. */
  const checkRotated = (): void => {
    let current: fs.Stats | undefined;
    try {
      current = fs.statSync(data.jsonl);
    } catch {
      // Removed: keep reading the descriptor we have until a new file appears.
    }
    if (current !== undefined && current.ino !== inode) {
      try {
        const next = fs.openSync(data.jsonl, 'r');
        // What the old file still held is read first.
        readToEnd();
        fs.closeSync(fd);
        fd = next;
        inode = fs.fstatSync(fd).ino;
        restart('renamed');
        return;
      } catch {
        // Gone again between the stat and the open: the next poll sees.
      }
    }
    try {
      if (fs.fstatSync(fd).size < position || !samePrefix()) restart('truncated');
    } catch {
      // The descriptor went bad; the next poll tries again.
    }
  };
  const readToEnd = (): void => {
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, position)) > 0) {
      if (head.length < HEAD_BYTES && position === head.length) head = Buffer.concat([head, buf.subarray(0, Math.min(n, HEAD_BYTES - head.length))]);
      position += n;
      onText(decoder.decode(buf.subarray(0, n), { stream: true }));
    }
  };
  // Reads what is there, then (with follow) polls for growth like `tail -F`: a file renamed
  // away (or removed) and created again, or truncated (copytruncate) even if written past
  // its old size before the next poll, is read again from its start.
  const pump = (): void => {
    if (stopped) return;
    if (data.follow && position > 0) checkRotated();
    readToEnd();
    if (!data.follow) {
      finish();
      fs.closeSync(fd);
      return;
    }
    setTimeout(pump, 100);
  };
  admission.post({ type: 'ready', address: data.jsonl });
  stopHandlers.push(() => {
    stopped = true;
  });
  whenStarted(() => {
    started = Date.now();
    setImmediate(pump);
  });
}

/** Runs `begin` now, or (with --wait-clients) once the main thread says enough clients are there. */
function whenStarted(begin: () => void): void {
  if (data.gated) startGate = begin;
  else begin();
}

// ---- synthetic events, paced like gofeeder ----

function generateSynthetic(): void {
  const frames = new SyntheticFrames({ cluster: data.cluster, host: data.host, alertEvery: data.alertEvery }, (v) => admission.pack(v));
  const sleepCell = new Int32Array(new SharedArrayBuffer(4));
  const paceMinUs = 200;
  let stopped = false;
  let i = 0;
  let ringFull = 0;
  let startMs = 0;

  // Sleeps only once at least paceMinUs ahead of schedule (bursts of ~10 events at
  // 50k/s), as gofeeder does: a wake-up per event would cost more than the events.
  const run = (): void => {
    const sliceEnd = performance.now() + 10;
    while (!stopped && (data.count === 0 || i < data.count)) {
      if (data.rate > 0) {
        const dueMs = startMs + (i * 1000) / data.rate;
        const aheadMs = dueMs - performance.now();
        if (aheadMs * 1000 >= paceMinUs) {
          if (aheadMs > 5) {
            setTimeout(run, Math.max(1, aheadMs - 1));
            return;
          }
          Atomics.wait(sleepCell, 0, 0, aheadMs);
        }
      }
      const now = nowMicros();
      if (!admission.producer.offer(frames.frame(i, now), now, data.rate === 0)) {
        // Unpaced: wait for the encoders instead of dropping, so "as fast as possible"
        // means as fast as the pipeline takes. (Paced, a full ring drops: ring_full.)
        if (data.rate === 0) {
          Atomics.wait(sleepCell, 0, 0, 0.2);
          continue;
        }
        ringFull++;
      }
      i++;
      if (performance.now() > sliceEnd) {
        setImmediate(run);
        return;
      }
    }
    if (!stopped) admission.post({ type: 'finished', unit: 'generated', read: i, events: i - ringFull, rejected: 0, ringFull, elapsedMs: performance.now() - startMs });
  };
  const begin = (): void => {
    startMs = performance.now();
    run();
  };
  stopHandlers.push(() => {
    stopped = true;
  });
  admission.post({ type: 'ready', address: 'synthetic' });
  whenStarted(begin);
}

switch (data.kind) {
  case 'socket':
  case 'tcp':
    serveFrames();
    break;
  case 'jsonl':
    readJsonLines();
    break;
  case 'synthetic':
    generateSynthetic();
    break;
}
