import type { Command } from 'commander';

export function registerLoad(_program: Command): void {
  // Not implemented yet.
}
