import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { expect, it } from 'vitest';

// CONVENTIONS "Layout and direction": main/cli -> container -> http -> oidc -> {accounts,
// clients, keys, audit} -> db; shared and config for everyone. Domain modules know nothing
// of Koa or the protocol engine. (audit is a leaf the domain modules may record into.)
const SRC = path.resolve(import.meta.dirname, '../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

function layerOf(file: string): string {
  const rel = path.relative(SRC, file);
  return rel.includes(path.sep) ? rel.split(path.sep)[0]! : rel.replace(/\.ts$/, '');
}

const imports = sources(SRC).flatMap((file) => {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map(([, spec]) => ({
    from: layerOf(file),
    file: path.relative(SRC, file),
    target: spec!.startsWith('.') ? layerOf(path.resolve(path.dirname(file), spec!)) : `pkg:${spec}`,
  }));
});

const ALLOWED: Record<string, string[]> = {
  shared: [],
  config: ['shared'],
  db: ['shared', 'config'],
  audit: ['shared', 'config', 'db'],
  accounts: ['shared', 'config', 'db', 'audit'],
  clients: ['shared', 'config', 'db', 'audit'],
  keys: ['shared', 'config', 'db', 'audit'],
  oidc: ['shared', 'config', 'db', 'audit', 'accounts', 'clients', 'keys'],
  http: ['shared', 'config', 'db', 'audit', 'accounts', 'clients', 'keys', 'oidc'],
};
const FRAMEWORK = /^pkg:(koa|@koa\/|oidc-provider)/;

it('imports point one way', () => {
  const wrong = imports.filter(
    ({ from, target }) =>
      !target.startsWith('pkg:') && from !== target && ALLOWED[from] !== undefined && !ALLOWED[from]!.includes(target),
  );
  expect(wrong).toEqual([]);
});

it('nothing but the container (and the entry points) imports http', () => {
  const wrong = imports.filter(({ from, target }) => target === 'http' && !['http', 'container'].includes(from));
  expect(wrong).toEqual([]);
});

it('domain modules know nothing of Koa or the protocol engine', () => {
  const domain = ['shared', 'config', 'db', 'audit', 'accounts', 'clients', 'keys'];
  const wrong = imports.filter(({ from, target }) => domain.includes(from) && FRAMEWORK.test(target));
  expect(wrong).toEqual([]);
});

it('the check sees the code it checks', () => {
  expect(imports.some(({ from, target }) => from === 'oidc' && target === 'accounts')).toBe(true);
  expect(imports.length).toBeGreaterThan(50);
});
