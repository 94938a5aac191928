import { randomBytes } from 'node:crypto';

import pg from 'pg';

// The growth phase's data: a year-old installation's worth of rows, made in SQL with
// generate_series (minutes of client round trips become seconds). The rows look like Postern's:
// payloads copied from the records the run itself just made (same kinds, same jsonb sizes),
// ids, grant ids and uids shaped like the keyed hashes the adapter stores (43 base64url
// characters, random), grant ids shared by a grant's records, and accountId spread over
// 100,000 people, so every index holds what it would in production.

/** How a seeded kind is weighted: tokens outnumber sessions, and codes and interactions are few. */
const KIND_WEIGHTS: Readonly<Record<string, number>> = {
  RefreshToken: 6,
  AccessToken: 6,
  Grant: 3,
  Session: 3,
  AuthorizationCode: 1,
  Interaction: 1,
};
const GRANT_BOUND = ['RefreshToken', 'AccessToken', 'AuthorizationCode'];
const HAS_UID = ['Session', 'Interaction'];

// base64url(sha256(text)) without padding: the shape of RecordProtection.hashId.
const HASH = (text: string) =>
  `rtrim(translate(encode(sha256(convert_to(${text}, 'UTF8')), 'base64'), '+/', '-_'), '=')`;

async function templates(client: pg.Client): Promise<void> {
  await client.query(`create temporary table bench_template (slot serial, kind text, payload jsonb)`);
  for (const [kind, weight] of Object.entries(KIND_WEIGHTS)) {
    await client.query(
      `insert into bench_template (kind, payload)
         select kind, payload from (select kind, payload from oidc_payloads where kind = $1 limit 1) t,
         generate_series(1, $2::int)`,
      [kind, weight],
    );
  }
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from bench_template');
  if (!rows[0]?.n) throw new Error('growth seed: no engine records to copy (the sign-ins should have made some)');
}

/** `count` rows of oidc_payloads, expired ones or live ones; `salt` keeps runs' ids apart. */
async function seedPayloads(client: pg.Client, count: number, expired: boolean, salt: string): Promise<void> {
  const tag = `'${salt}:${expired ? 'x' : 'l'}:'`;
  const expiresAt = expired
    ? `now() - interval '1 second' - (g % 2592000) * interval '1 second'` // up to 30 days ago
    : `now() + interval '1 hour' + (g % 1209600) * interval '1 second'`; // up to 14 days ahead
  await client.query(
    `insert into oidc_payloads (kind, id, payload, grant_id, uid, expires_at, consumed_at, id_hashed)
     select t.kind,
            ${HASH(`${tag} || g`)},
            case when t.payload ? 'accountId'
                 then jsonb_set(t.payload, '{accountId}', to_jsonb(md5(${tag} || (g % 100000))::uuid::text))
                 else t.payload end,
            case when t.kind = any($2) then ${HASH(`${tag} || 'grant' || (g / 3)`)} end,
            case when t.kind = any($3) then ${HASH(`${tag} || 'uid' || g`)} end,
            ${expiresAt},
            case when t.kind = 'AuthorizationCode' then now() - interval '1 minute' end,
            true
       from generate_series(1, $1::int) g
       join bench_template t on t.slot = 1 + g % (select count(*) from bench_template)`,
    [count, GRANT_BOUND, HAS_UID],
  );
}

/** `count` audit events over the last 90 days (inside the default 400-day retention). */
async function seedAuditEvents(client: pg.Client, count: number, salt: string): Promise<void> {
  await client.query(
    `insert into audit_events (at, type, account_id, client_id, ip, user_agent, details)
     select now() - (g % 7776000) * interval '1 second',
            t.type,
            md5('${salt}:a:' || (g % 100000))::uuid,
            'bench-web',
            '10.' || (g % 250) || '.' || (g / 250 % 250) || '.' || (g % 7),
            'Mozilla/5.0 (X11; Linux x86_64) bench',
            t.details
       from generate_series(1, $1::int) g
       join (select row_number() over () as slot, type, details
               from (select distinct on (type) type, details from audit_events) d) t
         on t.slot = 1 + g % greatest(1, (select count(distinct type) from audit_events))`,
    [count],
  );
}

export interface Seeded {
  readonly expiredPayloads: number;
  readonly livePayloads: number;
  readonly auditEvents: number;
  readonly seconds: number;
}

/** Seeds, then VACUUM ANALYZE: the planner and the visibility map as after autovacuum caught up. */
export async function seedGrowth(databaseUrl: string, rows: number, log: (line: string) => void): Promise<Seeded> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const start = performance.now();
  try {
    const salt = randomBytes(6).toString('hex');
    await client.query('set synchronous_commit = off');
    await templates(client);
    log(`${rows} expired oidc_payloads rows`);
    await seedPayloads(client, rows, true, salt);
    log(`${rows} live oidc_payloads rows`);
    await seedPayloads(client, rows, false, salt);
    log(`${rows} audit_events rows`);
    await seedAuditEvents(client, rows, salt);
    log('vacuum analyze');
    await client.query('vacuum analyze oidc_payloads');
    await client.query('vacuum analyze audit_events');
  } finally {
    await client.end();
  }
  return { expiredPayloads: rows, livePayloads: rows, auditEvents: rows, seconds: (performance.now() - start) / 1000 };
}

/** Expired provider rows still waiting for the sweeper. */
export async function countExpired(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'select count(*) as n from oidc_payloads where expires_at <= now()',
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}
