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
import { Command } from 'commander';
import { exitOnError } from './exit';
import { registerServe } from './serve';
import { registerRelay } from './relay';
import { registerLog } from './log';
import { registerLoad } from './load';
import { registerTune } from './tune';
import { registerExportCheck } from './exportCheck';

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

if (require.main === module) main(process.argv.slice(2));
