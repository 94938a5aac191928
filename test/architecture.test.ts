import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { FRAMEWORK_PARTS, PARTS, renderParts } from './architecture.parts.ts';

// Every file of src/, entry points included, against the parts and arrows of
// test/architecture.parts.ts (CONVENTIONS "Layout and direction"; README "Architecture").
const ROOT = path.resolve(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** The parts whose paths claim a file (exactly one, when the table is right). */
function partsOf(file: string): string[] {
  const rel = path.relative(SRC, file).split(path.sep).join('/');
  return PARTS.filter((p) => p.paths.some((x) => (x.endsWith('/') ? rel.startsWith(x) : rel === x))).map((p) => p.name);
}

interface Import {
  readonly file: string;
  readonly from: string;
  /** A part, or `pkg:name` for a package. */
  readonly target: string;
  /** `import type ...`: erased when Node runs the file. */
  readonly typeOnly: boolean;
}

// Static imports and re-exports (also across lines), side-effect imports, and import(): a
// dynamic import is still an arrow, only a later one.
const STATIC = /^(import|export)\s+(type\s+)?[^;'"]*?from\s*['"]([^'"]+)['"]/gm;
const BARE = /^import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const from = partsOf(file)[0] ?? '?';
  const target = (spec: string) =>
    spec.startsWith('.') ? (partsOf(path.resolve(path.dirname(file), spec))[0] ?? '?') : `pkg:${spec}`;
  const rel = path.relative(SRC, file);
  return [
    ...[...text.matchAll(STATIC)].map(([, , type, spec]) => ({ spec: spec!, typeOnly: type !== undefined })),
    ...[...text.matchAll(BARE)].map(([, spec]) => ({ spec: spec!, typeOnly: false })),
    ...[...text.matchAll(DYNAMIC)].map(([, spec]) => ({ spec: spec!, typeOnly: false })),
  ].map(({ spec, typeOnly }) => ({ file: rel, from, target: target(spec), typeOnly }));
}

const files = sources(SRC);
const imports = files.flatMap(importsOf);
const between = imports.filter((i) => !i.target.startsWith('pkg:') && i.target !== i.from);
const part = (name: string) => PARTS.find((p) => p.name === name);

describe('the parts of src/', () => {
  it('claim every file, entry points included, each file once', () => {
    const wrong = files
      .map((f) => ({ file: path.relative(SRC, f), parts: partsOf(f) }))
      .filter((f) => f.parts.length !== 1);
    expect(wrong).toEqual([]);
  });

  it('import only along the declared arrows', () => {
    const wrong = between.filter(({ from, target }) => {
      const p = part(from);
      return !p?.uses.includes(target) && !p?.typesFrom?.includes(target);
    });
    expect(wrong).toEqual([]);
  });

  it('import nothing but types along an arrow declared for types', () => {
    const wrong = between.filter(({ from, target, typeOnly }) => {
      const p = part(from);
      return !typeOnly && !p?.uses.includes(target) && p?.typesFrom?.includes(target);
    });
    expect(wrong).toEqual([]);
  });

  it('use every declared arrow: the table describes the code as it is', () => {
    const used = new Set(between.map(({ from, target }) => `${from} -> ${target}`));
    const unused = PARTS.flatMap((p) => [...p.uses, ...(p.typesFrom ?? [])].map((t) => `${p.name} -> ${t}`)).filter(
      (arrow) => !used.has(arrow),
    );
    expect(unused).toEqual([]);
  });

  it('leave Koa and the protocol engine to the container, http and oidc', () => {
    const wrong = imports.filter(
      ({ from, target }) => !FRAMEWORK_PARTS.includes(from) && /^pkg:(koa|@koa\/|oidc-provider)/.test(target),
    );
    expect(wrong).toEqual([]);
  });

  it('are seen by the check as they are (it reads the code it checks)', () => {
    const seen = (from: string, target: string, typeOnly: boolean) =>
      imports.some((i) => i.from === from && i.target === target && i.typeOnly === typeOnly);
    expect(seen('oidc', 'accounts', false)).toBe(true);
    expect(seen('config', 'oidc', true)).toBe(true);
    expect(seen('cli', 'main', false)).toBe(true); // a dynamic import
    expect(seen('oidc', 'pkg:oidc-provider', false)).toBe(true);
    expect(imports.length).toBeGreaterThan(200);
  });

  it('are shown in the README as they are declared here', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- parts: test\/architecture\.parts\.ts -->\n([\s\S]*?)\n<!-- \/parts -->/.exec(readme);
    expect(block?.[1]).toBe(renderParts());
  });
});
