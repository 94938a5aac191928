import { migrateToLatest, pendingMigrations } from '../db/migrator.ts';
import { defineCommand } from './command.ts';
import { toJson } from './output.ts';
import { withDatabase } from './runtime.ts';

// Opens only the database, never the services: those refuse a schema that is behind, and
// bringing it up to date is this command's whole job.
export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'bring the database schema up to date',
  description: `Applies every pending migration (safe to run again, and from several instances at once:
Kysely's migrator takes a lock).`,
  options: {
    status: { type: 'boolean', description: 'list pending migrations without applying them' },
    json: { type: 'boolean', description: 'print {"applied": [...]} or {"pending": [...]}' },
  },
  async run({ values }, ctx) {
    const json = values.json;
    if (values.status) {
      const pending = await withDatabase(ctx, 'postern migrate --status', (h) => pendingMigrations(h.db));
      if (json) return ctx.io.out(toJson({ pending }));
      ctx.io.out(
        pending.length
          ? `${pending.length} pending migration(s): ${pending.join(', ')}`
          : 'the database schema is up to date',
      );
      return;
    }
    const { applied } = await withDatabase(ctx, 'postern migrate', (h) => migrateToLatest(h.db));
    if (json) return ctx.io.out(toJson({ applied }));
    ctx.io.out(
      applied.length
        ? `applied ${applied.length} migration(s): ${applied.join(', ')}`
        : 'the database schema is up to date',
    );
  },
});
