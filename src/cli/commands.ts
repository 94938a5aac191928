import { auditCommand } from './audit.command.ts';
import { clientCommands } from './client.command.ts';
import { keysCommands } from './keys.command.ts';
import { mailCommands } from './mail.command.ts';
import { migrateCommand } from './migrate.command.ts';
import { resourceCommands } from './resource.command.ts';
import type { Command } from './runtime.ts';
import { serveCommand } from './serve.command.ts';
import { sessionCommands } from './session.command.ts';
import { userCommands } from './user.command.ts';

/**
 * Every `postern` command, in the order `postern help` lists them. A new command is one
 * defineCommand() declaration in its group's file, listed there (or here, for a new group).
 */
export const COMMANDS: readonly Command[] = [
  serveCommand,
  migrateCommand,
  ...clientCommands,
  ...resourceCommands,
  ...userCommands,
  ...sessionCommands,
  ...keysCommands,
  ...mailCommands,
  auditCommand,
];
