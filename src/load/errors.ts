/**
 * Errors of `armorfeed load` and `armorfeed tune` that a user can act on. Flag
 * problems extend ConfigError so the CLI exits 2 with the flag named; RPC and
 * broker failures are recorded in the report instead and turn the exit status to 1.
 */
import { ArmorfeedError, ConfigError } from '../errors';

/** A load/tune flag has a value that cannot be used; `key` names the flag. */
export class LoadFlagError extends ConfigError {}

/** The run would leave the machine: only loopback targets are allowed. */
export class NotLoopbackError extends ConfigError {
  constructor(key: string, address: string) {
    super(
      key,
      `${address} is not a loopback address; load and tune only drive servers on this machine ` +
        '(use 127.0.0.1, ::1 or localhost)',
    );
  }
}

/** The broker spawned by `tune` (or a test) did not start or did not print its listening line. */
export class BrokerStartError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_LOAD_BROKER_START', message);
  }
}
