/**
 * `npm run lint:infra` (tools/lint-infra.ts): every Bicep file under infra/ parses, and a broken one
 * is reported with file:line:col. Syntax only; `az bicep build` is what compiles (CI).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { blankExtensionStatements, findBicepFiles, formatProblem, lintBicep, parseBicep } from '../../tools/lint-infra';
import { INFRA } from './bicep';

describe('lint:infra', () => {
  it('finds the Bicep files under infra/', () => {
    const files = findBicepFiles(INFRA).map((f) => path.relative(INFRA, f));
    expect(files).toEqual(
      expect.arrayContaining([
        'main.bicep',
        'app/api.bicep',
        'app/email.bicep',
        'app/graph-permissions.bicep',
        'app/host-storage.bicep',
        'app/identity.bicep',
        'app/monitoring.bicep',
        'app/rbac.bicep',
        'app/reports-storage.bicep',
      ]),
    );
  });

  it('parses every .bicep file under infra/ without an ERROR or MISSING node', async () => {
    const { files, problems } = await lintBicep([INFRA]);
    expect(files.length).toBeGreaterThanOrEqual(9);
    expect(problems.map((p) => formatProblem(p, INFRA))).toEqual([]);
  });

  it('flags a broken snippet with its line and column', async () => {
    const source = [
      "param name string = 'x'", // 1
      "resource st 'Microsoft.Storage/storageAccounts@2025-01-01' = {", // 2
      '  name: name', // 3
      '  properties: {', // 4
      '    allowSharedKeyAccess: ', // 5: value missing
      '  }', // 6
      '}', // 7
    ].join('\n');
    const { problems } = await parseBicep(source, 'broken.bicep');
    expect(problems).toEqual([
      { file: 'broken.bicep', line: 5, column: 26, kind: 'MISSING', message: 'missing "identifier"' },
    ]);
  });

  it('reports a MISSING token (an unclosed array) where it should have been', async () => {
    const { problems } = await parseBicep("var xs = [\n  'a'\n  'b'\n", 'unclosed.bicep');
    expect(problems).toEqual([
      expect.objectContaining({ kind: 'MISSING', line: 3, column: 6, message: 'missing "]"' }),
    ]);
    expect(formatProblem(problems[0], '/')).toBe('unclosed.bicep:3:6: MISSING: missing "]"');
  });

  it('blanks `extension` statements (unknown to tree-sitter-bicep 1.1.0) and keeps positions', async () => {
    const source = 'extension microsoftGraphV1\nparam principalId string\nvar x = \n';
    expect(blankExtensionStatements(source)).toBe(
      `${' '.repeat('extension microsoftGraphV1'.length)}\nparam principalId string\nvar x = \n`,
    );
    const { problems } = await parseBicep(source, 'ext.bicep');
    // Only the real error (line 3) is left; the extension line no longer counts as one.
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.line === 3 || p.line === 4)).toBe(true);
    expect(
      (
        await parseBicep(
          "extension 'br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0'\nparam p string\n",
        )
      ).problems,
    ).toEqual([]);
  });

  it('fails on a directory with a broken file and names file:line:col', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lint-infra-'));
    try {
      writeFileSync(path.join(dir, 'good.bicep'), "param a string = 'b'\n");
      writeFileSync(path.join(dir, 'bad.bicep'), "param a string = 'b'\noutput o string = a.\n");
      const { files, problems } = await lintBicep([dir]);
      expect(files.map((f) => path.basename(f))).toEqual(['bad.bicep', 'good.bicep']);
      expect(problems.map((p) => formatProblem(p, dir))).toEqual([expect.stringMatching(/^bad\.bicep:2:\d+: ERROR: /)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
