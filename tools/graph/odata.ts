/**
 * The slice of OData the Graph simulator understands: `$filter` expressions, `$select` lists and `$expand`
 * items. Each endpoint declares which properties and operators it accepts (each list's page on Microsoft Learn, e.g.
 * https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityschedules), and
 * anything else is rejected the way Graph rejects it, so the product cannot come to depend on query forms
 * that are not documented.
 */
import { timeKey } from '../tenant/time';

export class ODataError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const badRequest = (message: string, code = 'BadRequest') => new ODataError(400, code, message);

// ---------------------------------------------------------------------------------------------------------
// $filter
// ---------------------------------------------------------------------------------------------------------

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'datetime'; value: string; key: string }
  | { type: 'null' }
  | { type: 'bool'; value: boolean }
  | { type: 'number'; value: number };

export type FilterNode =
  | { kind: 'and' | 'or'; items: FilterNode[] }
  | { kind: 'not'; item: FilterNode }
  | { kind: 'cmp'; prop: string; op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'; value: Literal }
  | { kind: 'in'; prop: string; values: Literal[] }
  | { kind: 'fn'; name: string; prop: string; value: Literal };

type Token =
  | { t: 'id'; v: string; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'dt'; v: string; pos: number }
  | { t: 'num'; v: number; pos: number }
  | { t: 'punct'; v: '(' | ')' | ','; pos: number };

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})/i;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ t: 'punct', v: c, pos: i });
      i++;
    } else if (c === "'") {
      // OData string literal: a quote inside is doubled.
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length)
          throw badRequest(`Invalid filter clause: unterminated string literal at position ${i} in '${text}'.`);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            v += "'";
            j += 2;
            continue;
          }
          break;
        }
        v += text[j++];
      }
      out.push({ t: 'str', v, pos: i });
      i = j + 1;
    } else {
      const dt = DATETIME.exec(text.slice(i));
      if (dt) {
        out.push({ t: 'dt', v: dt[0], pos: i });
        i += dt[0].length;
        continue;
      }
      const num = /^-?\d+(\.\d+)?(?![\w-])/.exec(text.slice(i));
      if (num) {
        out.push({ t: 'num', v: Number(num[0]), pos: i });
        i += num[0].length;
        continue;
      }
      const id = /^[A-Za-z_$@][\w./@$-]*/.exec(text.slice(i));
      if (!id) throw badRequest(`Invalid filter clause: syntax error at position ${i} in '${text}'.`);
      out.push({ t: 'id', v: id[0], pos: i });
      i += id[0].length;
    }
  }
  return out;
}

const COMPARISONS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

/** Parses a `$filter` value into a tree. Syntax only; `validateFilter` checks it against an endpoint. */
export function parseFilter(text: string): FilterNode {
  const tokens = tokenize(text);
  let p = 0;
  const peek = () => tokens[p];
  const fail = (what: string): never => {
    const at = tokens[p]?.pos ?? text.length;
    throw badRequest(`Invalid filter clause: ${what} at position ${at} in '${text}'.`);
  };
  const isWord = (tok: Token | undefined, word: string) => tok?.t === 'id' && tok.v.toLowerCase() === word;
  const expectPunct = (v: '(' | ')' | ',') => {
    const tok = peek();
    if (tok?.t !== 'punct' || tok.v !== v) fail(`'${v}' expected`);
    p++;
  };
  const literal = (): Literal => {
    const tok = peek();
    if (!tok) return fail('a value expected');
    p++;
    if (tok.t === 'str') return { type: 'string', value: tok.v };
    if (tok.t === 'dt') return { type: 'datetime', value: tok.v, key: timeKey(tok.v) ?? fail('invalid date-time') };
    if (tok.t === 'num') return { type: 'number', value: tok.v };
    if (tok.t === 'id') {
      const w = tok.v.toLowerCase();
      if (w === 'null') return { type: 'null' };
      if (w === 'true' || w === 'false') return { type: 'bool', value: w === 'true' };
    }
    p--;
    return fail('a literal value expected');
  };
  const property = (): string => {
    const tok = peek();
    if (tok?.t !== 'id') return fail('a property name expected');
    p++;
    return tok.v;
  };
  const primary = (): FilterNode => {
    const tok = peek();
    if (!tok) return fail('an expression expected');
    if (tok.t === 'punct' && tok.v === '(') {
      p++;
      const inner = orExpr();
      expectPunct(')');
      return inner;
    }
    if (isWord(tok, 'not')) {
      p++;
      return { kind: 'not', item: primary() };
    }
    const next = tokens[p + 1];
    if (tok.t === 'id' && next?.t === 'punct' && next.v === '(') {
      // Function call: name(property, literal), e.g. startswith(activityDisplayName,'Add').
      p += 2;
      const prop = property();
      expectPunct(',');
      const value = literal();
      expectPunct(')');
      return { kind: 'fn', name: tok.v.toLowerCase(), prop, value };
    }
    const prop = property();
    const op = peek();
    if (isWord(op, 'in')) {
      p++;
      expectPunct('(');
      const values = [literal()];
      while (peek()?.t === 'punct' && (peek() as { v: string }).v === ',') {
        p++;
        values.push(literal());
      }
      expectPunct(')');
      return { kind: 'in', prop, values };
    }
    if (op?.t !== 'id' || !COMPARISONS.has(op.v.toLowerCase())) return fail('a comparison operator expected');
    p++;
    return { kind: 'cmp', prop, op: op.v.toLowerCase() as 'eq', value: literal() };
  };
  const andExpr = (): FilterNode => {
    const items = [primary()];
    while (isWord(peek(), 'and')) {
      p++;
      items.push(primary());
    }
    return items.length === 1 ? items[0] : { kind: 'and', items };
  };
  const orExpr = (): FilterNode => {
    const items = [andExpr()];
    while (isWord(peek(), 'or')) {
      p++;
      items.push(andExpr());
    }
    return items.length === 1 ? items[0] : { kind: 'or', items };
  };
  if (!tokens.length) fail('an expression expected');
  const tree = orExpr();
  if (p < tokens.length) fail('unexpected token');
  return tree;
}

export type FilterOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'in' | 'startswith' | 'null';

export interface FilterProperty {
  type: 'string' | 'datetime' | 'bool';
  /** Operators documented for the property; `null` = `eq null` / `ne null` allowed. */
  ops: readonly FilterOp[];
}

export interface FilterSpec {
  /** Entity type name for messages, e.g. microsoft.graph.unifiedRoleEligibilitySchedule. */
  entity: string;
  properties: Readonly<Record<string, FilterProperty>>;
  /** Whether `or` / `not` may be used. */
  allowOr?: boolean;
  /** Extra hint appended to "not supported" messages. */
  hint?: string;
}

const OP_KIND: Record<string, string> = {
  eq: 'Equal',
  ne: 'NotEqual',
  gt: 'GreaterThan',
  ge: 'GreaterThanOrEqual',
  lt: 'LessThan',
  le: 'LessThanOrEqual',
};

/** Checks a parsed filter against what the endpoint documents; throws Graph-like 400s. */
export function validateFilter(node: FilterNode, spec: FilterSpec): void {
  const unsupported = (prop: string, what: string) =>
    badRequest(
      `Invalid filter clause: ${what} on property '${prop}' is not supported on ${spec.entity}.${spec.hint ? ` ${spec.hint}` : ''}`,
    );
  const propOf = (prop: string): FilterProperty => {
    const found =
      spec.properties[prop] ??
      spec.properties[Object.keys(spec.properties).find((k) => k.toLowerCase() === prop.toLowerCase()) ?? ''];
    if (!found) {
      throw badRequest(
        `Invalid filter clause: filtering on property '${prop}' is not supported on ${spec.entity}. ` +
          `Supported: ${Object.keys(spec.properties).join(', ')}.${spec.hint ? ` ${spec.hint}` : ''}`,
      );
    }
    return found;
  };
  const checkLiteral = (prop: string, p: FilterProperty, value: Literal, op: string) => {
    if (value.type === 'null') {
      if (!p.ops.includes('null') || (op !== 'eq' && op !== 'ne')) throw unsupported(prop, `comparison with null`);
      return;
    }
    const expected = p.type === 'datetime' ? 'datetime' : p.type === 'bool' ? 'bool' : 'string';
    if (value.type !== expected) {
      const edm = (t: string) =>
        ({ string: 'Edm.String', datetime: 'Edm.DateTimeOffset', bool: 'Edm.Boolean', number: 'Edm.Int32' })[t] ??
        'Edm.String';
      throw badRequest(
        `A binary operator with incompatible types was detected. Found operand types '${edm(expected)}' and '${edm(value.type)}' for operator kind '${OP_KIND[op] ?? op}'.`,
      );
    }
  };
  const walk = (n: FilterNode): void => {
    switch (n.kind) {
      case 'and':
        n.items.forEach(walk);
        return;
      case 'or':
      case 'not':
        if (!spec.allowOr)
          throw badRequest(`Invalid filter clause: the '${n.kind}' operator is not supported on ${spec.entity}.`);
        if (n.kind === 'not') walk(n.item);
        else n.items.forEach(walk);
        return;
      case 'cmp': {
        const p = propOf(n.prop);
        if (!p.ops.includes(n.op) && !(n.value.type === 'null' && p.ops.includes('null')))
          throw unsupported(n.prop, `operator '${n.op}'`);
        checkLiteral(n.prop, p, n.value, n.op);
        return;
      }
      case 'in': {
        const p = propOf(n.prop);
        if (!p.ops.includes('in')) throw unsupported(n.prop, `operator 'in'`);
        n.values.forEach((v) => checkLiteral(n.prop, p, v, 'eq'));
        return;
      }
      case 'fn': {
        const p = propOf(n.prop);
        if (n.name !== 'startswith' || !p.ops.includes('startswith')) throw unsupported(n.prop, `function '${n.name}'`);
        checkLiteral(n.prop, p, n.value, 'eq');
        return;
      }
    }
  };
  walk(node);
}

/** Reads `a/b/c` from a record. */
export function readPath(item: unknown, path: string): unknown {
  let cur: unknown = item;
  for (const part of path.split('/')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    const rec = cur as Record<string, unknown>;
    cur = part in rec ? rec[part] : rec[Object.keys(rec).find((k) => k.toLowerCase() === part.toLowerCase()) ?? part];
  }
  return cur;
}

/** Compiles a validated filter to a predicate. Strings compare case-insensitively, date-times at 100 ns. */
export function compileFilter(node: FilterNode, spec: FilterSpec): (item: unknown) => boolean {
  const typeOf = (prop: string) =>
    (
      spec.properties[prop] ??
      spec.properties[Object.keys(spec.properties).find((k) => k.toLowerCase() === prop.toLowerCase()) ?? '']
    )?.type ?? 'string';
  const compare = (actual: unknown, value: Literal, type: string): number | null => {
    if (value.type === 'null') return actual === null || actual === undefined ? 0 : 1;
    if (actual === null || actual === undefined) return null;
    if (type === 'datetime' && value.type === 'datetime') {
      const k = timeKey(String(actual));
      if (k === null) return null;
      return k < value.key ? -1 : k > value.key ? 1 : 0;
    }
    if (value.type === 'bool') return actual === value.value ? 0 : 1;
    const a = String(actual).toLowerCase();
    const b = String((value as { value: unknown }).value).toLowerCase();
    return a < b ? -1 : a > b ? 1 : 0;
  };
  const build = (n: FilterNode): ((item: unknown) => boolean) => {
    switch (n.kind) {
      case 'and': {
        const parts = n.items.map(build);
        return (item) => parts.every((f) => f(item));
      }
      case 'or': {
        const parts = n.items.map(build);
        return (item) => parts.some((f) => f(item));
      }
      case 'not': {
        const inner = build(n.item);
        return (item) => !inner(item);
      }
      case 'cmp': {
        const type = typeOf(n.prop);
        return (item) => {
          const c = compare(readPath(item, n.prop), n.value, type);
          if (n.op === 'ne') return c !== 0;
          if (c === null) return false;
          switch (n.op) {
            case 'eq':
              return c === 0;
            case 'gt':
              return c > 0;
            case 'ge':
              return c >= 0;
            case 'lt':
              return c < 0;
            case 'le':
              return c <= 0;
          }
          return false;
        };
      }
      case 'in': {
        const type = typeOf(n.prop);
        return (item) => n.values.some((v) => compare(readPath(item, n.prop), v, type) === 0);
      }
      case 'fn': {
        const prefix = String((n.value as { value: unknown }).value).toLowerCase();
        return (item) => {
          const actual = readPath(item, n.prop);
          return typeof actual === 'string' && actual.toLowerCase().startsWith(prefix);
        };
      }
    }
  };
  return build(node);
}

/** The `eq` values a filter pins a property to at its top-level `and` (e.g. groupId for PIM for Groups). */
export function topLevelEquals(node: FilterNode, prop: string): string[] {
  const items = node.kind === 'and' ? node.items : [node];
  return items.flatMap((n) =>
    n.kind === 'cmp' && n.op === 'eq' && n.prop.toLowerCase() === prop.toLowerCase() && n.value.type === 'string'
      ? [n.value.value]
      : [],
  );
}

// ---------------------------------------------------------------------------------------------------------
// $select and $expand
// ---------------------------------------------------------------------------------------------------------

/** Splits on `sep` outside parentheses. */
export function splitTopLevel(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Validates `$select=a,b` against an entity's properties; returns the names (as given in the entity). */
export function parseSelect(value: string, entity: string, properties: readonly string[]): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw badRequest(`Invalid $select: '${value}'.`);
  return names.map((name) => {
    const found = properties.find((p) => p.toLowerCase() === name.toLowerCase());
    if (!found) throw badRequest(`Could not find a property named '${name}' on type '${entity}'.`);
    return found;
  });
}

export interface ExpandItem {
  name: string;
  /** Nested query options, e.g. { $select: 'id' }. */
  options: Record<string, string>;
}

/** Parses `$expand=principal,roleDefinition($select=displayName)`. */
export function parseExpand(value: string): ExpandItem[] {
  return splitTopLevel(value, ',').map((item) => {
    const m = /^([\w.*]+)\s*(?:\((.*)\))?$/s.exec(item);
    if (!m) throw badRequest(`Invalid $expand item '${item}'.`);
    const options: Record<string, string> = {};
    for (const part of m[2] ? splitTopLevel(m[2], ';') : []) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw badRequest(`Invalid nested query option '${part}' in $expand.`);
      const key = part.slice(0, eq).trim().toLowerCase();
      options[key.startsWith('$') ? key : `$${key}`] = part.slice(eq + 1).trim();
    }
    return { name: m[1], options };
  });
}
