// @ts-check
// ESLint flat config. Rules are chosen to catch defects (promises left floating, misused, or awaited when
// they are not promises; unreachable or shadowed code; imports that break the layers), not to police style:
// formatting is Prettier's job (.prettierrc.json). The layers are described in docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Folders and files of src/ from the top of the stack down (docs/architecture.md). */
const ENTRY = ['src/functions', 'src/cli.ts', 'src/hosting.ts', 'src/http.ts', 'src/services.ts', 'src/index.ts'];
const JOBS = ['src/jobs'];
const DOMAIN = ['src/report', 'src/history', 'src/pim'];
const ADAPTERS = ['src/graph', 'src/arm', 'src/io', 'src/settings.ts'];

/** @type {import('eslint-plugin-import-x').RuleOptions['no-restricted-paths'][0]['zones']} */
const layerZones = [
  { target: 'src', from: ['tools', 'test'], message: 'src/ never imports the simulators or the tests.' },
  { target: JOBS, from: ENTRY, message: 'Jobs know nothing of triggers or the CLI (docs/architecture.md).' },
  {
    target: DOMAIN,
    from: [...ENTRY, ...JOBS],
    message: 'report/, history/, pim/ sit below jobs/ (docs/architecture.md).',
  },
  {
    target: 'src/pim',
    from: ['src/report', 'src/history'],
    message: 'pim/ turns Graph records into rows; it imports neither report/ nor history/ (docs/architecture.md).',
  },
  {
    target: 'src/report',
    from: ['src/history'],
    message:
      'report/ turns rows into bytes; the history (which reads its CSVs back) sits beside it, not below (docs/architecture.md).',
  },
  {
    target: ADAPTERS,
    from: [...ENTRY, ...JOBS, ...DOMAIN],
    message: 'graph/, io/ and settings.ts are the bottom layer (docs/architecture.md).',
  },
  {
    target: ['src/util', 'src/log.ts', 'src/version.ts'],
    from: [...ENTRY, ...JOBS, ...DOMAIN, ...ADAPTERS],
    message: 'Shared utilities import nothing of the layers (docs/architecture.md).',
  },
  // No job imports another job: shared job plumbing (context, files, state, lock) is fine.
  ...['daily', 'monthly', 'export'].map((job) => ({
    target: `src/jobs/${job}.ts`,
    from: ['daily', 'monthly', 'export'].filter((other) => other !== job).map((other) => `src/jobs/${other}.ts`),
    message: 'A job does not import another job; move what both need below jobs/ (docs/architecture.md).',
  })),
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'pim-reports-demo/**', 'infra/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js', '.json', '.node'] })],
    },
    rules: {
      // Promises: each of these has found real bugs (an unawaited write, a rejected promise nobody sees).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A switch over a union that forgets a member.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
      // The layers.
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
    },
  },
  {
    // Tests build hostile inputs on purpose (control characters) and poke at untyped payloads.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-control-regex': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { module: 'readonly', require: 'readonly', process: 'readonly', __dirname: 'readonly' },
    },
  },
);
