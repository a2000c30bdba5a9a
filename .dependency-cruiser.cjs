// The layering of src/ (STYLE.md), checked by `npm run lint`: arrows point inward —
// commands → app → targets / artifacts / report / env → core; core is pure and imports only core.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle makes the layers meaningless; move the shared type inward.',
      from: {path: '^src/'},
      to: {circular: true},
    },
    {
      name: 'core-does-no-io',
      severity: 'error',
      comment: 'src/core is pure: no node: built-ins (fs, child_process, os, …).',
      from: {path: '^src/core/'},
      to: {dependencyTypes: ['core']},
    },
    {
      name: 'core-imports-only-core',
      severity: 'error',
      comment: 'src/core imports nothing from the other layers (npm libraries such as diff are fine).',
      from: {path: '^src/core/'},
      to: {path: '^src/', pathNot: '^src/core/'},
    },
    {
      name: 'app-only-from-commands',
      severity: 'error',
      comment: 'Only commands, the app itself (and tests) import src/app.',
      from: {path: '^src/', pathNot: '^src/(commands|app|cli)/'},
      to: {path: '^src/app/'},
    },
    {
      name: 'nothing-imports-commands',
      severity: 'error',
      comment: 'Commands are the outermost layer.',
      from: {path: '^src/', pathNot: '^src/commands/'},
      to: {path: '^src/commands/'},
    },
    {
      name: 'adapters-do-not-import-each-other-upwards',
      severity: 'error',
      comment: 'targets, artifacts, report and env sit between app and core: they never reach for cli/ or commands/.',
      from: {path: '^src/(targets|artifacts|report|env)/'},
      to: {path: '^src/(cli|commands)/'},
    },
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    enhancedResolveOptions: {exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js']},
  },
}
