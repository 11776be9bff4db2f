/**
 * `armorfeed` command line: one sub-command per use.
 *   serve  run the feeder (ingest -> ring -> encode -> fan-out -> gRPC)
 *   relay  serve the merged streams of many feeders (a cluster) on one LogService
 *   log    a karmor-compatible client that reconnects
 *   load   drive a feeder end to end and measure it
 *   tune   sweep queue/encoder/ring settings against a drop-rate target
 *   export-check  connect to NATS, check or create the stream, publish and read back one event
 * Bad flags exit with status 2 and a message that names the flag.
 */
import { Command, CommanderError } from 'commander';
import { ArmorfeedError } from '../errors';
import { registerServe } from './serve';
import { registerRelay } from './relay';
import { registerLog } from './log';
import { registerLoad } from './load';
import { registerTune } from './tune';
import { registerExportCheck } from './exportCheck';

export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('armorfeed')
    .description('A wire-compatible KubeArmor log feeder and its tools')
    .showHelpAfterError()
    .exitOverride();
  registerServe(program);
  registerRelay(program);
  registerLog(program);
  registerLoad(program);
  registerTune(program);
  registerExportCheck(program);
  return program;
}

export function main(argv: string[]): void {
  // stderr only carries messages: a reader that went away (EPIPE) must neither turn a
  // usage error's status 2 into an uncaught exception's 1 nor take a running broker down
  // (its lines still go to WatchMessages).
  process.stderr.on('error', () => undefined);
  const program = buildProgram();
  program.parseAsync(argv, { from: 'user' }).catch((err: unknown) => exitOnError(err));
}

/**
 * Maps a start-up failure to its exit status: 2 for usage and config errors (a socket path
 * in use, an export stream whose subjects are not ours included), 1 otherwise.
 */
export function exitOnError(err: unknown): never {
  if (err instanceof CommanderError) {
    // commander already printed the message; help and version exit 0.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (err instanceof ArmorfeedError) {
    process.stderr.write(`armorfeed: ${err.code}: ${err.message}\n`);
    process.exit(err.code.startsWith('ERR_CONFIG') || err.code === 'ERR_SOCKET_IN_USE' || err.code === 'ERR_EXPORT_STREAM_MISMATCH' ? EXIT_USAGE : 1);
  }
  process.stderr.write(`armorfeed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

if (require.main === module) main(process.argv.slice(2));
