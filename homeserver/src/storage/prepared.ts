/**
 * Queries built and compiled once, then run with new arguments. kysely builds an immutable query
 * tree and compiles it to SQL on every call; on the hot paths (persisting an event, /sync) that
 * costs more CPU than SQLite executing the statement (docs/PERFORMANCE.md). A `PreparedQuery` is
 * built with `arg(i)` stand-ins where the values go, compiled once per dialect, and afterwards
 * only the parameter list is made anew.
 *
 * Only for queries whose shape does not depend on the arguments: no `IN (…)` lists of variable
 * length, no optional clauses. The SQL text is identical on every run, so SQLite also reuses its
 * prepared statement (sqlite-statement-cache.ts).
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from './schema.js';

/** Where the i-th argument goes (a plain object: kysely passes it through as a parameter). */
class ArgSlot {
  constructor(readonly index: number) {}
}

/** The i-th argument's place in a query being prepared; typed as whatever the column wants. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function arg(index: number): any {
  return new ArgSlot(index);
}

interface Compiled {
  sql: string;
  parameters: readonly unknown[];
  /** Positions in `parameters` filled from the arguments (−1: a constant). */
  slots: readonly number[];
}

export class PreparedQuery<Args extends readonly unknown[], Row = unknown> {
  /** One compilation per dialect (the adapter object is shared by a database's transactions). */
  private readonly compiled = new WeakMap<object, Compiled>();

  constructor(private readonly build: (db: Kysely<Database>) => Compilable<Row>) {}

  /** Runs the query on `exec` (the database or a transaction) with these arguments. */
  async execute(exec: Kysely<Database>, ...args: Args): Promise<QueryResult<Row>> {
    const c = this.compile(exec);
    const parameters = c.parameters.slice();
    for (let i = 0; i < c.slots.length; i++) {
      const slot = c.slots[i]!;
      if (slot >= 0) parameters[i] = args[slot];
    }
    return exec.executeQuery<Row>(CompiledQuery.raw(c.sql, parameters));
  }

  async rows(exec: Kysely<Database>, ...args: Args): Promise<Row[]> {
    return (await this.execute(exec, ...args)).rows;
  }

  async first(exec: Kysely<Database>, ...args: Args): Promise<Row | undefined> {
    return (await this.execute(exec, ...args)).rows[0];
  }

  private compile(exec: Kysely<Database>): Compiled {
    const key = exec.getExecutor().adapter;
    let c = this.compiled.get(key);
    if (!c) {
      const query = this.build(exec).compile();
      c = {
        sql: query.sql,
        parameters: query.parameters,
        slots: query.parameters.map((p) => (p instanceof ArgSlot ? p.index : -1)),
      };
      this.compiled.set(key, c);
    }
    return c;
  }
}

/** Prepared queries whose shape depends on one small number (e.g. the rows of a multi-row insert). */
export class PreparedQueryFamily<Args extends readonly unknown[], Row = unknown> {
  private readonly byShape = new Map<number, PreparedQuery<Args, Row>>();

  constructor(
    private readonly build: (db: Kysely<Database>, shape: number) => Compilable<Row>,
    private readonly maxShapes = 128,
  ) {}

  of(shape: number): PreparedQuery<Args, Row> {
    let q = this.byShape.get(shape);
    if (!q) {
      q = new PreparedQuery<Args, Row>((db) => this.build(db, shape));
      if (this.byShape.size < this.maxShapes) this.byShape.set(shape, q);
    }
    return q;
  }
}

/** Items per `IN (…)` list of a prepared query: one compiled shape per list length up to this. */
export const PREPARED_LIST_CHUNK = 100;

/** `n` argument slots from `first` on: an `IN (…)` list in a prepared query. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function argList(first: number, n: number): any[] {
  return Array.from({ length: n }, (_, i) => arg(first + i));
}

/**
 * Runs a family whose shape is the length of an `IN (…)` list over `items`, PREPARED_LIST_CHUNK at
 * a time: each run gets the `fixed` arguments, then the chunk. The rows of every run, in order.
 */
export async function rowsForList<Row>(
  exec: Kysely<Database>,
  family: PreparedQueryFamily<unknown[], Row>,
  fixed: readonly unknown[],
  items: readonly unknown[],
): Promise<Row[]> {
  const out: Row[] = [];
  for (let i = 0; i < items.length; i += PREPARED_LIST_CHUNK) {
    const chunk = items.slice(i, i + PREPARED_LIST_CHUNK);
    for (const row of await family.of(chunk.length).rows(exec, ...fixed, ...chunk)) out.push(row);
  }
  return out;
}
