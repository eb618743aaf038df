// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Workflow code runs in Temporal's deterministic sandbox: it may import only @temporalio/workflow,
 * src/domain, sibling workflow modules (./shared and ./messages/<area> among them) and activity types.
 */
const workflowImportRule = (extraAllowed) => [
  'error',
  {
    patterns: [
      {
        regex: `^(?!(${['@temporalio/workflow', ...extraAllowed].map((p) => p.replace(/[/.]/g, '\\$&')).join('|')}|(\\.\\./)+domain/[\\w-]+|\\./(messages/)?[\\w-]+|\\.\\./shared|\\.\\./activities(/[\\w-]+)?)$)`,
        message:
          'Workflow files may import only @temporalio/workflow, src/domain, ./shared and activity types.',
      },
      {
        regex: '^\\.\\./activities(/[\\w-]+)?$',
        allowTypeImports: true,
        message: 'Workflows import activities as types only (import type …).',
      },
    ],
  },
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.data/',
      'coverage/',
      'bench/results/',
      'src/db/migrations/Migration*.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs', '*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/ban-ts-comment': 'error',
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    ignores: ['src/workflows/shared.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': workflowImportRule([]) },
  },
  {
    // shared.ts is imported by both sides; it may also use @temporalio/common's key helpers.
    files: ['src/workflows/shared.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': workflowImportRule(['@temporalio/common']) },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        module: 'readonly',
        require: 'readonly',
        __dirname: 'readonly',
        process: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
