#!/usr/bin/env node
/**
 * `make settings-doc` (write) and the check in `make lint` (check): builds docs/reference/settings.md from every
 * declaration and fails when the committed file differs, or when a script reads a variable no declaration names.
 *
 *   node settings/dist/cli.js write|check      (after tsc -b: the declarations are read from the built packages)
 *
 * The declarations: every exported {@link Settings} of the modules in DECLARATIONS, and the `#:`/`#-` lines of
 * hack/lib.sh. The reads checked: `${EF_X:-…}` and its kin in hack/*.sh and the Makefile (TypeScript reads go through
 * the declarations; ESLint refuses `.EF_X` member reads).
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  declarationProblems,
  parseShellDeclarations,
  renderReference,
  sectionOf,
  shellReads,
  type ReferenceSection,
  type RetiredName,
} from './reference.js';
import { Settings, type Spec } from './settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = 'docs/reference/settings.md';
/** The built modules that export declarations, in the order of their sections. */
const DECLARATIONS = [
  'provider/dist/config.js',
  'edge-agent/dist/config.js',
  'edge-agent/dist/hollow/config.js',
  'registrar/dist/config.js',
  'mapper/dist/config.js',
  'bench/dist/settings.js',
  'testing/dist/settings.js',
];
const SHELL = {
  title: 'hack/ and make',
  source: 'hack/lib.sh',
  intro:
    'The local stack (`make up`, `make down`, `make status`, `make clean`, hack/*.sh), read by the scripts; the e2e suite and `make bench` set them for their own instances.',
};

async function main(): Promise<number> {
  const mode = process.argv[2];
  if (mode !== 'write' && mode !== 'check') {
    process.stderr.write('usage: node settings/dist/cli.js write|check\n');
    return 2;
  }
  const lib = readFileSync(path.join(ROOT, SHELL.source), 'utf8');
  const shell = parseShellDeclarations(lib);
  const sections: ReferenceSection[] = [{ ...SHELL, rows: shell.rows }];
  const retired: RetiredName[] = shell.retired.map((r) => ({ ...r, section: SHELL.title }));
  for (const file of DECLARATIONS) {
    const mod = (await import(pathToFileURL(path.join(ROOT, file)).href)) as Record<string, unknown>;
    const found = Object.values(mod).filter((v): v is Settings<Record<string, Spec<unknown>>> => v instanceof Settings);
    if (found.length === 0) throw new Error(`${file} exports no settings declaration`);
    for (const s of found) {
      sections.push(sectionOf(s));
      for (const [name, instead] of Object.entries(s.retired)) retired.push({ name, section: s.section.title, instead });
    }
  }

  const scripts = readdirSync(path.join(ROOT, 'hack'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => `hack/${f}`);
  const reads = new Map([...scripts, 'Makefile'].map((f) => [f, shellReads(readFileSync(path.join(ROOT, f), 'utf8'))] as const));
  const problems = [
    ...shell.malformed.map((l) => `hack/lib.sh: not a declaration (#: NAME | takes | default | meaning, or #- NAME | instead): ${l}`),
    ...declarationProblems(sections, shell, reads),
  ];
  if (problems.length > 0) {
    process.stderr.write(`settings: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}\n`).join('')}`);
    return 1;
  }

  const doc = renderReference(sections, retired);
  const target = path.join(ROOT, OUT);
  if (mode === 'write') {
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, doc);
    process.stdout.write(`wrote ${OUT} (${sections.reduce((n, s) => n + s.rows.length, 0)} settings)\n`);
    return 0;
  }
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // missing: reported as stale below
  }
  if (committed === doc) return 0;
  const a = committed.split('\n');
  const b = doc.split('\n');
  const line = a.findIndex((l, i) => l !== b[i]);
  const at = line < 0 ? a.length : line;
  process.stderr.write(
    `${OUT} is not what the declarations generate (run make settings-doc and commit it); first difference at line ${at + 1}:\n` +
      `  committed: ${a[at] ?? '(end of file)'}\n  generated: ${b[at] ?? '(end of file)'}\n`,
  );
  return 1;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`settings: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
