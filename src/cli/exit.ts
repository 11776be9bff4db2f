/**
 * How a command ends when it cannot start: the exit status and the one line on stderr.
 * Every sub-command ends through here, so a usage error is status 2 wherever it arises.
 */
import { CommanderError } from 'commander';
import { ArmorfeedError } from '../errors';

export const EXIT_USAGE = 2;

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
