/**
 * `npm run lint:infra`: a syntax check of every `.bicep` file under `infra/` (or the directories given
 * as arguments) with the tree-sitter Bicep grammar, run as WebAssembly (no .NET, no network).
 *
 * It catches what a typo does (an unclosed brace, a missing value, a stray token) and names
 * file:line:col. It is not `az bicep build`: no type checking, no resource schemas, no linter rules.
 * Those run where the Bicep CLI exists (CI, or `az bicep build --file infra/main.bicep`).
 *
 * tree-sitter-bicep 1.1.0 predates the `extension` statement (Microsoft Graph extension), so such lines
 * are blanked before parsing; blanking keeps every other line and column where it was.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Language, Node, Parser, Tree } from 'web-tree-sitter';

export interface SyntaxProblem {
  file: string;
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
  kind: 'ERROR' | 'MISSING';
  message: string;
}

export interface ParsedBicep {
  file: string;
  /** The text as it was parsed (extension statements blanked). */
  source: string;
  tree: Tree;
  problems: SyntaxProblem[];
}

let parserPromise: Promise<Parser> | undefined;

function getParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    await Parser.init();
    const wasm = readFileSync(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
    const bicep = await Language.load(new Uint8Array(wasm));
    const parser = new Parser();
    parser.setLanguage(bicep);
    return parser;
  })();
  return parserPromise;
}

/** Matches a whole `extension …` statement line (`extension microsoftGraphV1`, `extension 'br:…' as x`). */
const EXTENSION_LINE = /^[ \t]*extension[ \t]+\S.*$/gm;

/** Replaces each `extension …` line with spaces of the same length, so positions stay the same. */
export function blankExtensionStatements(source: string): string {
  return source.replace(EXTENSION_LINE, (line) => line.replace(/[^\r]/g, ' '));
}

function snippet(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 40 ? `${oneLine.slice(0, 40)}…` : oneLine;
}

function collectProblems(file: string, root: Node): SyntaxProblem[] {
  const problems: SyntaxProblem[] = [];
  const report = (node: Node, kind: SyntaxProblem['kind'], message: string) =>
    problems.push({ file, line: node.startPosition.row + 1, column: node.startPosition.column + 1, kind, message });
  const visit = (node: Node): void => {
    if (node.isMissing) {
      report(node, 'MISSING', `missing ${node.type === node.text || node.text === '' ? `"${node.type}"` : node.type}`);
      return;
    }
    if (node.isError) {
      report(
        node,
        'ERROR',
        `syntax error: cannot parse "${snippet(node.text)}" (through ${node.endPosition.row + 1}:${node.endPosition.column + 1})`,
      );
    }
    if (!node.hasError && !node.isError) return;
    for (const child of node.children) if (child) visit(child);
  };
  visit(root);
  // A MISSING node inside an ERROR node at the same place is one problem, not two.
  return problems.filter(
    (p, i) => problems.findIndex((q) => q.line === p.line && q.column === p.column && q.kind === p.kind) === i,
  );
}

/** Parses Bicep text. `file` only labels the problems. */
export async function parseBicep(source: string, file = '<inline>'): Promise<ParsedBicep> {
  const parser = await getParser();
  const text = blankExtensionStatements(source);
  const tree = parser.parse(text);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${file}`);
  return { file, source: text, tree, problems: collectProblems(file, tree.rootNode) };
}

export async function parseBicepFile(file: string): Promise<ParsedBicep> {
  return parseBicep(readFileSync(file, 'utf8'), file);
}

/** Every `.bicep` file under `dir`, sorted, skipping node_modules and dot-directories. */
export function findBicepFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.bicep')) out.push(full);
    }
  };
  walk(dir);
  return out;
}

export function formatProblem(p: SyntaxProblem, relativeTo = process.cwd()): string {
  const file = path.isAbsolute(p.file) ? path.relative(relativeTo, p.file) || p.file : p.file;
  return `${file}:${p.line}:${p.column}: ${p.kind}: ${p.message}`;
}

/** Parses every file; returns the files checked and the problems found. */
export async function lintBicep(dirs: string[]): Promise<{ files: string[]; problems: SyntaxProblem[] }> {
  const files = dirs.flatMap((d) => (statSync(d).isDirectory() ? findBicepFiles(d) : [d]));
  const problems: SyntaxProblem[] = [];
  for (const file of files) {
    const parsed = await parseBicepFile(file);
    problems.push(...parsed.problems);
    parsed.tree.delete();
  }
  return { files, problems };
}

/** The repository's infra/ directory: the nearest ancestor of this file (src or dist) that has one. */
function defaultInfraDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'infra');
    try {
      if (statSync(path.join(dir, 'package.json')).isFile() && statSync(candidate).isDirectory()) return candidate;
    } catch {
      // keep walking up
    }
    if (path.dirname(dir) === dir) return path.resolve('infra');
  }
}

async function main(argv: string[]): Promise<number> {
  const dirs = argv.length > 0 ? argv : [defaultInfraDir()];
  const { files, problems } = await lintBicep(dirs);
  if (files.length === 0) {
    process.stderr.write(`lint:infra: no .bicep files under ${dirs.join(', ')}\n`);
    return 1;
  }
  for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
  if (problems.length > 0) {
    process.stderr.write(`lint:infra: ${problems.length} syntax problem(s) in ${files.length} file(s)\n`);
    return 1;
  }
  process.stdout.write(
    `lint:infra: ${files.length} Bicep file(s) parse cleanly (syntax only; compile with az bicep build in CI)\n`,
  );
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`lint:infra: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
