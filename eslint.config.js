// @ts-check
import nx from "@nx/eslint-plugin";
import prettier from "eslint-config-prettier";
import tseslint from "typescript-eslint";

/**
 * Lint for the whole workspace. Project boundaries come from the Nx tags in each package.json:
 * `type:*` says what a package is, `scope:*` which service owns it.
 */
export default tseslint.config(
  {
    ignores: [
      "**/node_modules/**",
      "libs/contracts/src/gen/**",
      ".dev/**",
      ".nx/**",
      ".cache/**",
      "bench/results/**",
      "coverage/**",
      // `npm run build` output: bundles of the sources linted here.
      "**/dist/**",
    ],
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.js"],
    plugins: { "@nx": nx },
    rules: {
      "@nx/enforce-module-boundaries": [
        "error",
        {
          enforceBuildableLibDependency: false,
          allowCircularSelfDependency: false,
          depConstraints: [
            // What a package may depend on, by kind.
            { sourceTag: "type:contracts", onlyDependOnLibsWithTags: [] },
            { sourceTag: "type:util", onlyDependOnLibsWithTags: ["type:util", "type:contracts"] },
            {
              sourceTag: "type:testing",
              onlyDependOnLibsWithTags: ["type:util", "type:contracts"],
            },
            {
              sourceTag: "type:app",
              onlyDependOnLibsWithTags: ["type:util", "type:contracts", "type:testing"],
            },
            {
              sourceTag: "type:tooling",
              onlyDependOnLibsWithTags: ["type:util", "type:contracts", "type:testing"],
            },
            {
              sourceTag: "type:e2e",
              onlyDependOnLibsWithTags: [
                "type:app",
                "type:util",
                "type:contracts",
                "type:testing",
                "type:tooling",
              ],
            },
            {
              sourceTag: "type:bench",
              onlyDependOnLibsWithTags: [
                "type:app",
                "type:util",
                "type:contracts",
                "type:testing",
                "type:tooling",
              ],
            },
            // Whose code a package may use: a service only its own and shared code.
            { sourceTag: "scope:shared", onlyDependOnLibsWithTags: ["scope:shared"] },
            {
              sourceTag: "scope:auth-edge",
              onlyDependOnLibsWithTags: ["scope:auth-edge", "scope:shared"],
            },
            { sourceTag: "scope:token", onlyDependOnLibsWithTags: ["scope:token", "scope:shared"] },
            {
              sourceTag: "scope:session-identity",
              onlyDependOnLibsWithTags: ["scope:session-identity", "scope:shared"],
            },
            {
              sourceTag: "scope:iam-policy",
              onlyDependOnLibsWithTags: ["scope:iam-policy", "scope:shared"],
            },
            { sourceTag: "scope:mfa", onlyDependOnLibsWithTags: ["scope:mfa", "scope:shared"] },
            {
              sourceTag: "scope:platform",
              onlyDependOnLibsWithTags: [
                "scope:shared",
                "scope:auth-edge",
                "scope:token",
                "scope:session-identity",
                "scope:iam-policy",
                "scope:mfa",
              ],
            },
          ],
        },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      eqeqeq: ["error", "always"],
      "no-restricted-syntax": [
        "error",
        {
          selector: "TSEnumDeclaration",
          message: "enums are not erasable syntax; use a union of literals",
        },
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: "read the environment only through loadConfig(process.env) in main.ts",
        },
      ],
    },
  },
  {
    // The entry points hand process.env to loadConfig; the test harness reads its own settings.
    files: [
      "apps/*/src/main.ts",
      "tools/src/start.ts",
      "tools/src/proto-*.ts",
      "libs/platform/testing/src/backends.ts",
      "e2e/src/**/*.ts",
      "bench/**/*.ts",
    ],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    // Domain areas (apps/<service>/src/<area>/) work on domain types; handlers translate
    // protobuf messages at the edge of the service.
    files: ["apps/*/src/*/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@authplat/contracts", "@authplat/contracts/*"],
              message: "domain code does not import generated protobuf types",
            },
            { group: ["@grpc/*"], message: "domain code does not depend on the transport" },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.test.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
  prettier,
);
