import { CompiledQuery, type Kysely, type QueryResult } from 'kysely';

import type { Database } from './tables.ts';

/** Stands in for a value while the statement is compiled; found again, by identity, among its parameters. */
class Placeholder {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

/** A named stand-in for a value that changes from one run to the next. */
export type Param<P> = <K extends keyof P & string>(name: K) => P[K];

/** Runs the compiled statement with these values. */
export type CompiledStatement<P, R> = (params: P) => Promise<QueryResult<R>>;

/**
 * A statement Kysely builds and compiles once, then runs with new values each time: on the token
 * paths, building and compiling a query cost Postern more CPU than sending it (issue 16). `build`
 * writes the query as usual, with `param(name)` where a value changes; every other value stays as
 * compiled. The text must not depend on the values (no list whose length varies, no clause that
 * comes and goes), so that one placeholder stands for the same parameters on every run.
 */
export function compileOnce<P extends object, R>(
  db: Kysely<Database>,
  build: (param: Param<P>) => CompiledQuery<R>,
): CompiledStatement<P, R> {
  let compiled: { sql: string; values: (params: P) => unknown[] } | undefined;
  return (params) => {
    compiled ??= compile(build);
    return db.executeQuery<R>(CompiledQuery.raw(compiled.sql, compiled.values(params)));
  };
}

function compile<P extends object, R>(build: (param: Param<P>) => CompiledQuery<R>) {
  const query = build(((name: string) => new Placeholder(name)) as unknown as Param<P>);
  const slots = query.parameters.map((value) => (value instanceof Placeholder ? (value.name as keyof P) : { value }));
  return {
    sql: query.sql,
    values: (params: P) => slots.map((slot) => (typeof slot === 'object' ? slot.value : params[slot])),
  };
}
