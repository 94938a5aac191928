import { loadConfig } from '../config/config.ts';
import { deriveKeyEncryptionKey, resolveSecret } from '../config/secrets.ts';
import { toKeyView } from '../keys/key-view.ts';
import { reencryptStore } from '../keys/reencrypt.ts';
import { UsageError } from './args.ts';
import { defineCommand, JSON_OPTION } from './command.ts';
import { isoOrNever, table, toJson } from './output.ts';
import { withDatabase, withEngine, type Command } from './runtime.ts';

const list = defineCommand({
  name: 'keys list',
  summary: 'list the signing keys (next, current, retired)',
  description: 'Private keys are never shown; they are stored encrypted.',
  options: { json: JSON_OPTION },
  async run({ values }, ctx) {
    const keys = await withEngine(ctx, (c) => c.keys.list());
    if (values.json) return ctx.io.out(toJson(keys.map(toKeyView)));
    ctx.io.out(
      table(
        ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'RETIRE AFTER'],
        keys.map((k) => [
          k.kid,
          k.alg,
          k.state,
          k.created_at.toISOString(),
          isoOrNever(k.activated_at),
          k.retire_after ? k.retire_after.toISOString() : '-',
        ]),
      ),
    );
  },
});

const rotate = defineCommand({
  name: 'keys rotate',
  summary: 'rotate now: the next key signs, the current one retires',
  description: `A normal, early rotation (Postern also rotates by itself every POSTERN_KEY_ROTATION_SECONDS).
Running instances follow within POSTERN_KEY_POLL_SECONDS. The retired key stays published
until every token it signed has expired.`,
  options: {
    alg: { type: 'string', value: 'A', description: 'one algorithm only (default: all)' },
    force: {
      type: 'boolean',
      description: 'rotate even if the next key was published too recently for every JWKS cache to know it',
    },
    json: JSON_OPTION,
  },
  async run({ values }, ctx) {
    const alg = values.alg;
    const results = await withEngine(ctx, (c) => c.keys.rotate({ ...(alg ? { alg } : {}), force: values.force }));
    if (values.json) return ctx.io.out(toJson(results));
    for (const r of results)
      ctx.io.out(
        `${r.alg}: ${r.activated} now signs; ${r.retired} is retired (still published until its tokens expire)`,
      );
  },
});

const revoke = defineCommand({
  name: 'keys revoke',
  summary: 'withdraw a compromised key at once',
  description: `For a compromised key: it leaves JWKS at once (on every instance within POSTERN_KEY_POLL_SECONDS)
and, if it was signing, the next key takes over immediately. Every token it signed stops
verifying: their holders must get new ones.`,
  options: {
    json: { type: 'boolean', description: 'print {"revoked": key, "activated": KID} (activated: if it was signing)' },
  },
  positionals: [{ name: 'KID', description: 'the key id, as "postern keys list" shows it (it may start with "-")' }],
  async run({ values, positionals: [kid] }, ctx) {
    const { revoked, activated } = await withEngine(ctx, (c) => c.keys.revoke(kid));
    if (values.json) return ctx.io.out(toJson({ revoked: toKeyView(revoked), activated: activated ?? null }));
    ctx.io.out(
      `revoked ${revoked.alg} key ${revoked.kid} (${revoked.state}): it is no longer published, and tokens it signed no longer verify.`,
    );
    if (activated) ctx.io.out(`${activated} now signs ${revoked.alg}.`);
  },
});

const reencrypt = defineCommand({
  name: 'keys reencrypt',
  summary: 'move the encrypted key store to a new POSTERN_SECRET',
  description: `Run with the NEW secret in POSTERN_SECRET and the old one in the environment variable VAR.
Re-seals the signing keys and the installation key in one transaction (all or nothing; safe to
run again). Sessions, client secrets and tokens stay valid. Then restart every instance with the
new POSTERN_SECRET.`,
  options: {
    'old-secret-env': {
      type: 'string',
      value: 'VAR',
      required: true,
      description: 'the name of the variable holding the old secret (not the secret itself)',
    },
    json: { type: 'boolean', description: 'print {"reencrypted": N, "already": N}' },
  },
  async run({ values }, ctx) {
    const variable = values['old-secret-env'];
    const old = ctx.env[variable];
    if (!old) throw new UsageError(`the environment variable ${variable} is not set (it must hold the old secret)`);
    const { secret } = resolveSecret(loadConfig(ctx.env));
    if (old === secret) throw new UsageError(`${variable} holds the same secret as POSTERN_SECRET: nothing to do`);
    const result = await withDatabase(ctx, 'postern keys reencrypt', (h) =>
      reencryptStore(h.db, deriveKeyEncryptionKey(old), deriveKeyEncryptionKey(secret)),
    );
    if (values.json) return ctx.io.out(toJson(result));
    ctx.io.out(
      `re-encrypted ${result.reencrypted} key(s) under the new POSTERN_SECRET${result.already ? ` (${result.already} already were)` : ''}; restart every instance with it`,
    );
  },
});

export const keysCommands: readonly Command[] = [list, rotate, revoke, reencrypt];
