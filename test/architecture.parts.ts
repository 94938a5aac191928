// The parts of src/ and the arrows between them, written once. test/architecture.test.ts checks
// every file of src/ against this table, and the README's "Architecture" section shows it (the
// test checks that too). Adding an arrow is a design decision: make it here, in the open.

export interface Part {
  readonly name: string;
  /** Under src/: a folder ends with '/', a file is named in full. */
  readonly paths: readonly string[];
  readonly role: string;
  /** The parts whose code it may import. */
  readonly uses: readonly string[];
  /** The parts it may import types from, and nothing else (`import type`, erased when Node runs it). */
  readonly typesFrom?: readonly string[];
}

export const PARTS: readonly Part[] = [
  {
    name: 'main',
    paths: ['main.ts'],
    role: 'the server process: reads the environment, starts the server, handles signals',
    uses: ['server', 'config', 'shared'],
  },
  {
    name: 'cli',
    paths: ['cli.ts', 'cli/'],
    role: 'the `postern` command; `serve` runs main',
    uses: ['main', 'container', 'accounts', 'clients', 'keys', 'audit', 'db', 'config', 'shared'],
    typesFrom: ['oidc'],
  },
  {
    name: 'server',
    paths: ['server.ts'],
    role: 'the HTTP listeners around the container, and graceful shutdown',
    uses: ['container', 'config', 'shared'],
    typesFrom: ['db'],
  },
  {
    name: 'container',
    paths: ['container.ts', 'container/'],
    role: 'the composition root, in stages: storage, domain, protocol, http, jobs',
    uses: ['admin', 'http', 'oidc', 'accounts', 'clients', 'keys', 'mail', 'audit', 'db', 'config', 'shared'],
  },
  {
    name: 'admin',
    paths: ['admin/'],
    role: 'the admin API under /admin/v1: its operations, OpenAPI document, token check, idempotency, rate limit',
    uses: ['http', 'accounts', 'clients', 'keys', 'audit', 'db', 'config', 'shared'],
    typesFrom: ['oidc'],
  },
  {
    name: 'http',
    paths: ['http/'],
    role: 'the Koa app: pages, routes, middleware, the demo app',
    uses: ['oidc', 'accounts', 'clients', 'i18n', 'config', 'shared'],
  },
  {
    name: 'oidc',
    paths: ['oidc/'],
    role: "node-oidc-provider: its configuration, adapter and events, and the engine's tables",
    uses: ['accounts', 'clients', 'keys', 'audit', 'db', 'config', 'shared'],
  },
  {
    name: 'accounts',
    paths: ['accounts/'],
    role: 'accounts, passwords, sign-in and lockout; one-time links and codes; the account page operations; registration',
    uses: ['keys', 'audit', 'db', 'shared'],
    // The outbox is handed in by the container; accounts write to it, knowing only its type.
    typesFrom: ['mail'],
  },
  {
    name: 'clients',
    paths: ['clients/'],
    role: 'clients and resource servers',
    uses: ['audit', 'db', 'shared'],
  },
  {
    name: 'keys',
    paths: ['keys/'],
    role: 'signing keys and their lifecycle, the installation key, sealing',
    uses: ['audit', 'db', 'shared'],
  },
  {
    name: 'mail',
    paths: ['mail/'],
    role: 'the mail outbox (sealed messages), its sender job, the templates',
    uses: ['i18n', 'keys', 'db', 'config', 'shared'],
  },
  { name: 'i18n', paths: ['i18n/'], role: 'the texts of pages and mails, one file per language', uses: [] },
  { name: 'audit', paths: ['audit/'], role: 'the audit log', uses: ['db', 'shared'] },
  { name: 'db', paths: ['db/'], role: 'Kysely, the table types, the migrator', uses: ['shared'] },
  {
    name: 'config',
    paths: ['config/'],
    role: 'settings from the environment, every problem at once; the secrets',
    uses: ['shared'],
    typesFrom: ['accounts', 'keys', 'oidc'],
  },
  { name: 'shared', paths: ['shared/'], role: 'errors, logger, clock, metrics, small helpers', uses: [] },
];

/** Only these parts may import Koa or the protocol engine (types included). */
export const FRAMEWORK_PARTS: readonly string[] = ['container', 'admin', 'http', 'oidc'];

/** The table as the README shows it. */
export function renderParts(): string {
  const rows = PARTS.map((p) => {
    const imports = [...p.uses, ...(p.typesFrom ?? []).map((t) => `${t} (types)`)].join(', ') || '-';
    const paths = p.paths.map((path) => `\`${path}\``).join(' ');
    return `| ${p.name} | ${paths} | ${p.role} | ${imports} |`;
  });
  return ['| part | in `src/` | what | may import |', '|---|---|---|---|', ...rows].join('\n');
}
