import { loadConfig } from '../config/config.ts';
import { defineCommand } from './command.ts';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'run the identity provider (same as `node src/main.ts`)',
  description: `Runs the HTTP server with the settings from the environment (PORT, HOST, POSTERN_ISSUER,
DATABASE_URL or POSTERN_DATA_DIR, POSTERN_SECRET, LOG_LEVEL, ...). SIGTERM or SIGINT stops it
gracefully. With PostgreSQL, run "postern migrate" first (or set POSTERN_MIGRATE_ON_START=true).`,
  options: {},
  async run(_args, ctx) {
    // Checked here too so a bad setting reads the same as for every other command.
    loadConfig(ctx.env);
    // Loaded here, not at the top: the other commands never load the server (or the engine).
    const { main } = await import('../main.ts');
    // main() logs, listens, handles signals and sets process.exitCode itself.
    await main(ctx.env as NodeJS.ProcessEnv);
  },
});
