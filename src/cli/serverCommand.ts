/**
 * What `serve` and `relay` share as commands: registration from the option table, the
 * drain on SIGINT/SIGTERM with the exit summary (and, with --statsFile, the final stats
 * as JSON), and the machine-readable `listening` line.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { loadConfig, type ConfigCommand, type FeederConfig } from '../config';
import type { ServerAddresses } from '../server';
import type { FeederStats } from '../stats';
import { addConfigOptions, configFlags } from './configFlags';
import { exitOnError } from './exit';

/** What a server command does at exit besides its summary: where it writes the final stats (--statsFile), if anywhere. */
export interface ExitOptions {
  statsFile: string | undefined;
}

/** Registers `command` with its options from the option table; `run` gets the checked config. */
export function registerServerCommand(program: Command, command: ConfigCommand, description: string, run: (config: FeederConfig, exit: ExitOptions) => Promise<void>): void {
  const cmd = program.command(command).description(description);
  addConfigOptions(cmd, command);
  cmd.option('--statsFile <file>', 'at exit, after the drain, write the final stats to FILE as JSON (the object GET /stats serves), for scripts and tests');
  cmd.action(async (opts: Record<string, unknown>, self: Command) => {
    try {
      const config = loadConfig({ flags: configFlags(opts, self, command), env: process.env, file: opts.config as string | undefined, command });
      await run(config, { statsFile: opts.statsFile as string | undefined });
    } catch (err) {
      exitOnError(err);
    }
  });
}

/**
 * The first SIGINT/SIGTERM drains (`stopping` says what stops first), writes the final
 * stats to `exit.statsFile` (if given), prints `summary` of them and exits 0; a second one
 * exits 1 at once, without draining. Install it before the listening line: a supervisor
 * may signal as soon as it reads that.
 */
export function drainOnSignals(close: () => Promise<FeederStats>, stopping: string, graceMs: number, summary: (stats: FeederStats) => string, exit: ExitOptions): void {
  let signalled = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`armorfeed: ${signal} again, exiting without draining\n`);
      process.exit(1);
    }
    signalled = true;
    process.stderr.write(`armorfeed: ${signal}: ${stopping}, draining (grace ${graceMs} ms)\n`);
    close().then(
      (stats) => {
        const written = exit.statsFile === undefined || writeStatsFile(exit.statsFile, stats);
        process.stderr.write(summary(stats));
        process.exit(written ? 0 : 1);
      },
      (err: unknown) => {
        process.stderr.write(`armorfeed: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** `armorfeed: listening grpc=... health=... metrics=... <extra>`, once every port is bound. */
export function listeningLine(a: ServerAddresses, extra: readonly string[] = []): string {
  const tokens = [`grpc=${a.grpc}`];
  if (a.health !== undefined) tokens.push(`health=${a.health}`);
  if (a.metrics !== undefined) tokens.push(`metrics=${a.metrics}`);
  return `armorfeed: listening ${[...tokens, ...extra].join(' ')}\n`;
}

/** Writes the stats as JSON through a temporary file and a rename, so a reader never sees half of it; false (said on stderr) when it cannot. */
function writeStatsFile(file: string, stats: FeederStats): boolean {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(stats)}\n`);
    fs.renameSync(tmp, file);
    return true;
  } catch (err) {
    process.stderr.write(`armorfeed: cannot write the final stats to --statsFile ${file}: ${(err as Error).message}\n`);
    return false;
  }
}
