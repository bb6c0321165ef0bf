// ESLint (typescript-eslint, type-aware) for every workspace; formatting is Prettier's (eslint-config-prettier turns
// off the stylistic rules). `make lint` runs both; CI runs make lint.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/gen/**', 'node_modules/**', '.local/**', 'build/**', 'bench/results/**', 'provider/testdata/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      // Async functions implement Promise-returning interfaces (fakes, handlers) and turn throws into rejections.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Generators that read `this` from inner functions name it `self`.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self'] }],
      // `let x` assigned once after closures that read it were made (wiring parts that refer to each other).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests poke at parsed JSON and error objects.
    files: ['**/*.test.ts', 'e2e/**', 'testing/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // An EF_ setting is read through its declaration (docs/reference/settings.md), never straight from process.env.
    rules: {
      'no-restricted-syntax': [
        'error',
        ...['property.name', 'property.value'].map((p) => ({
          selector: `MemberExpression[object.object.name='process'][object.property.name='env'][${p}=/^EF_/]`,
          message: 'Read EF_ settings through their declaration (defineSettings, @edgefarm/settings), not from process.env.',
        })),
      ],
    },
  },
  {
    // Jest loads these two without the module mapper, so they cannot import the e2e declaration (E2E_SETTINGS).
    files: ['e2e/src/global-setup.ts', 'e2e/src/global-teardown.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  prettier,
);
