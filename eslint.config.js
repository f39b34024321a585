import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const components = ['broker', 'gateway', 'gpu-bridge', 'pc-adapter']

/** Components talk only through protocol/ (and share lib/); they never import each other. */
const isolation = components.map((name) => ({
  files: [`${name}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: components
          .filter((other) => other !== name)
          .map((other) => ({
            group: [`**/${other}/**`, `**/${other}`],
            message: `${name}/ must not import ${other}/: talk through protocol/ over MQTT or HTTP.`,
          })),
      },
    ],
  },
}))

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-confusing-void-expression': [
        'error',
        { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true },
      ],
      // STYLE: a function with more than three parameters takes one named object.
      '@typescript-eslint/max-params': ['error', { max: 3 }],
    },
  },
  ...isolation,
  {
    // issue-10 dashboard: the page's plain ES modules run in the browser; no tsconfig types them.
    files: ['gateway/dashboard/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'module',
      parserOptions: { projectService: false, program: null },
      globals: Object.fromEntries(
        [
          'AbortController',
          'Blob',
          'clearInterval',
          'clearTimeout',
          'confirm',
          'console',
          'document',
          'fetch',
          'FormData',
          'localStorage',
          'Node',
          'setInterval',
          'setTimeout',
          'TextDecoderStream',
          'URL',
          'URLSearchParams',
          'window',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
  {
    // The composition root embeds the broker in the gateway process (docs/design.md §2); it still talks
    // to it only over MQTT.
    files: ['gateway/main.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'protocol/ is the contract: no I/O.' },
            {
              group: ['../lib/**', ...components.map((c) => `../${c}/**`)],
              message: 'protocol/ stands alone.',
            },
          ],
        },
      ],
    },
  },
)
