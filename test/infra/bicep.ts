/**
 * Helpers for the infra tests: parse infra/*.bicep with the same tree-sitter grammar as
 * `npm run lint:infra`, then find resources, properties, variables and outputs in the tree,
 * so that a test asserts "this property, in this resource" rather than "this text somewhere".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Node } from 'web-tree-sitter';
import { findBicepFiles, parseBicepFile, type ParsedBicep } from '../../tools/lint-infra';

/**
 * Microsoft Graph's app role ids for the permissions docs/guarantees.md ("Least privilege") names, exactly those
 * (https://learn.microsoft.com/graph/permissions-reference lists each permission's id).
 */
export const GRAPH_APP_ROLE_IDS: Readonly<Record<string, string>> = {
  'RoleManagement.Read.Directory': '483bed4a-2ad3-4361-a73b-c83ccdbdc53c',
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da',
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61',
  'PrivilegedEligibilitySchedule.Read.AzureADGroup': 'edb419d6-7edc-42a3-9345-509bfdf5d87c',
  'RoleManagementPolicy.Read.AzureADGroup': '69e67828-780e-47fd-b28c-7b27d14864e6',
};

export const REPO = path.resolve(__dirname, '..', '..');
export const INFRA = path.join(REPO, 'infra');

export function infraPath(...parts: string[]): string {
  return path.join(INFRA, ...parts);
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

const cache = new Map<string, Promise<ParsedBicep>>();

/** Parses an infra file (path relative to infra/), once per test file. */
export function bicep(relative: string): Promise<ParsedBicep> {
  const file = infraPath(relative);
  let parsed = cache.get(file);
  if (!parsed) {
    parsed = parseBicepFile(file);
    cache.set(file, parsed);
  }
  return parsed;
}

export async function allBicep(): Promise<ParsedBicep[]> {
  return Promise.all(findBicepFiles(INFRA).map((f) => bicep(path.relative(INFRA, f))));
}

function named(node: Node): Node[] {
  return node.namedChildren.filter((c): c is Node => c !== null && c.type !== 'comment');
}

/** The text of a string literal without quotes; undefined for an interpolated or non-string node. */
export function stringValue(node: Node | null | undefined): string | undefined {
  if (!node || node.type !== 'string') return undefined;
  const parts = named(node);
  if (parts.some((p) => p.type === 'interpolation')) return undefined;
  return parts.map((p) => p.text).join('');
}

/** A literal's value: string, number, boolean, null, or an array of literals; otherwise undefined. */
export function literal(node: Node | null | undefined): unknown {
  if (!node) return undefined;
  switch (node.type) {
    case 'string':
      return stringValue(node);
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    case 'null':
      return null;
    case 'array':
      return named(node).map(literal);
    default:
      return undefined;
  }
}

/** The key of an object property as written (identifier or quoted string). */
export function propertyKey(property: Node): string {
  const key = named(property)[0];
  return key.type === 'string' ? (stringValue(key) ?? key.text) : key.text;
}

export function objectProperties(object: Node): Node[] {
  return named(object).filter((c) => c.type === 'object_property');
}

export function objectKeys(object: Node): string[] {
  return objectProperties(object).map(propertyKey);
}

/**
 * The value of `a.b.c` inside an object literal (keys compared case-sensitively). Give an array
 * for keys that contain dots themselves.
 */
export function prop(object: Node | null | undefined, path: string | string[]): Node | undefined {
  let current: Node | undefined = object ?? undefined;
  for (const key of Array.isArray(path) ? path : path.split('.')) {
    if (!current || current.type !== 'object') return undefined;
    const property = objectProperties(current).find((p) => propertyKey(p) === key);
    if (!property) return undefined;
    const children = named(property);
    current = children[children.length - 1];
  }
  return current;
}

export interface ResourceDecl {
  node: Node;
  symbol: string;
  /** Full type without the API version, e.g. Microsoft.Storage/storageAccounts/blobServices/containers. */
  type: string;
  apiVersion: string | undefined;
  existing: boolean;
  /** The `if (…)` condition's text, when the resource is conditional. */
  condition: string | undefined;
  /** The `for … in X` collection's text, when the resource is a loop. */
  loopOver: string | undefined;
  /** The resource body: `{ … }`. */
  body: Node;
  parent: ResourceDecl | undefined;
}

function declaredTypeString(node: Node): string {
  const typeNode = named(node).find((c) => c.type === 'string');
  return stringValue(typeNode) ?? '';
}

function describeResource(node: Node): ResourceDecl {
  const [typeAndVersion] = [declaredTypeString(node)];
  const [ownType, apiVersion] = typeAndVersion.split('@');
  // A nested resource sits in object_property > object > (if/for >) resource_declaration
  let parentNode: Node | null = node.parent;
  while (parentNode && parentNode.type !== 'resource_declaration') parentNode = parentNode.parent;
  const parent = parentNode ? describeResource(parentNode) : undefined;
  const type = parent && !ownType.includes('/') ? `${parent.type}/${ownType}` : ownType;

  const children = named(node);
  const existing = node.children.some((c) => c?.type === 'existing');
  let condition: string | undefined;
  let loopOver: string | undefined;
  let body = children.find((c) => c.type === 'object');
  const ifStatement = children.find((c) => c.type === 'if_statement');
  if (ifStatement) {
    condition = named(ifStatement).find((c) => c.type === 'parenthesized_expression')?.text;
    body = named(ifStatement).find((c) => c.type === 'object');
  }
  const forStatement = children.find((c) => c.type === 'for_statement');
  if (forStatement) {
    const parts = named(forStatement);
    const loopBody = forStatement.childForFieldName('body');
    const bodyIndex = parts.findIndex((c) => c.id === loopBody?.id);
    loopOver = bodyIndex > 0 ? parts[bodyIndex - 1].text : undefined;
    body = loopBody ?? undefined;
    if (body?.type === 'if_statement') body = named(body).find((c) => c.type === 'object');
  }
  if (!body) throw new Error(`resource at ${node.startPosition.row + 1} has no body`);
  return {
    node,
    symbol: children[0].text,
    type,
    apiVersion,
    existing,
    condition,
    loopOver,
    body,
    parent: parent ?? undefined,
  };
}

/** Every resource declaration in a file, nested ones included. */
export function resources(parsed: ParsedBicep, type?: string): ResourceDecl[] {
  const all = parsed.tree.rootNode.descendantsOfType('resource_declaration').filter((n): n is Node => n !== null);
  const described = all.map(describeResource);
  return type === undefined ? described : described.filter((r) => r.type.toLowerCase() === type.toLowerCase());
}

export function resource(parsed: ParsedBicep, symbol: string): ResourceDecl {
  const found = resources(parsed).find((r) => r.symbol === symbol);
  if (!found) throw new Error(`no resource '${symbol}' in ${parsed.file}`);
  return found;
}

function topLevel(parsed: ParsedBicep, type: string): Node[] {
  return named(parsed.tree.rootNode).filter((c) => c.type === type);
}

/** The value expression of `var name = …`. */
export function variable(parsed: ParsedBicep, name: string): Node {
  const declaration = topLevel(parsed, 'variable_declaration').find((v) => named(v)[0].text === name);
  if (!declaration) throw new Error(`no var '${name}' in ${parsed.file}`);
  const parts = named(declaration);
  return parts[parts.length - 1];
}

export interface ParamDecl {
  name: string;
  type: string;
  defaultValue: Node | undefined;
  /** Decorator calls, e.g. { allowed: [array node], minValue: [number node] }. */
  decorators: Record<string, Node[]>;
}

export function params(parsed: ParsedBicep): ParamDecl[] {
  const out: ParamDecl[] = [];
  let pending: Record<string, Node[]> = {};
  for (const child of named(parsed.tree.rootNode)) {
    if (child.type === 'decorators') {
      for (const decorator of named(child)) {
        const call = named(decorator)[0];
        const fn = call?.childForFieldName('function')?.text ?? call?.text ?? '';
        const args = call?.childForFieldName('arguments');
        pending[fn] = args ? named(args) : [];
      }
      continue;
    }
    if (child.type === 'parameter_declaration') {
      const parts = named(child);
      out.push({
        name: parts[0].text,
        type: parts[1]?.text ?? '',
        defaultValue: parts.length > 2 ? parts[parts.length - 1] : undefined,
        decorators: pending,
      });
    }
    pending = {};
  }
  return out;
}

export function param(parsed: ParsedBicep, name: string): ParamDecl {
  const found = params(parsed).find((p) => p.name === name);
  if (!found) throw new Error(`no param '${name}' in ${parsed.file}`);
  return found;
}

export function outputs(parsed: ParsedBicep): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const output of topLevel(parsed, 'output_declaration')) {
    const parts = named(output);
    map.set(parts[0].text, parts[parts.length - 1]);
  }
  return map;
}

export interface ModuleDecl {
  symbol: string;
  path: string;
  condition: string | undefined;
  body: Node;
}

export function modules(parsed: ParsedBicep): ModuleDecl[] {
  return topLevel(parsed, 'module_declaration').map((m) => {
    const parts = named(m);
    const ifStatement = parts.find((c) => c.type === 'if_statement');
    const body = ifStatement
      ? named(ifStatement).find((c) => c.type === 'object')
      : parts.find((c) => c.type === 'object');
    if (!body) throw new Error(`module ${parts[0].text} has no body`);
    return {
      symbol: parts[0].text,
      path: stringValue(parts[1]) ?? '',
      condition: ifStatement ? named(ifStatement).find((c) => c.type === 'parenthesized_expression')?.text : undefined,
      body,
    };
  });
}

/** Every node of the given types outside comments (tree-sitter keeps comments as their own nodes). */
export function tokens(parsed: ParsedBicep, types: string[]): Node[] {
  return parsed.tree.rootNode.descendantsOfType(types).filter((n): n is Node => n !== null);
}

/** Collapses whitespace, for comparing expressions written over several lines. */
export function squash(text: string | undefined): string {
  return (text ?? '').replace(/\s+/g, '');
}
