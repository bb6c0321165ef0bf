import { declarationProblems, parseShellDeclarations, renderReference, sectionOf, shellReads, shellVariable } from './reference.js';
import { defineSettings, int } from './settings.js';

const LIB = `# a script
#: EF_INSTANCE | instance name | dev | which stack
#: EF_HUB, make HUB= | 1 | 3 | 5 | 1 | hub servers
#: EF_PORT_BASE | port number | 16000 | first port
#- EF_OLD_THING | set EF_INSTANCE
#:EF_BROKEN
EF_INSTANCE=\${EF_INSTANCE:-dev}
`;

describe('parseShellDeclarations', () => {
  it('reads settings, retired names, and reports what looks like a declaration but is not one', () => {
    const d = parseShellDeclarations(LIB);
    expect(d.rows).toEqual([
      { name: 'EF_INSTANCE', accepts: 'instance name', default: 'dev', doc: 'which stack' },
      { name: 'EF_PORT_BASE', accepts: 'port number', default: '16000', doc: 'first port' },
    ]);
    expect(d.retired).toEqual([{ name: 'EF_OLD_THING', instead: 'set EF_INSTANCE' }]);
    // " | " inside a field splits it: the EF_HUB line has too many fields
    expect(d.malformed).toEqual(['#: EF_HUB, make HUB= | 1 | 3 | 5 | 1 | hub servers']);
  });
  it('takes the first name of a row as its variable', () => {
    expect(shellVariable({ name: 'EF_HUB, make HUB=', accepts: '', default: '', doc: '' })).toBe('EF_HUB');
  });
});

describe('shellReads', () => {
  it('finds variables read with a default, a check or a set test, not plain uses or assignments', () => {
    const text = [
      'a=${EF_A:-1} b=${EF_B-x} : "${EF_C:=2}" d=${EF_D:?need} [ -n "${EF_E+set}" ]',
      'EF_F=$((EF_PORT_BASE + 1)); echo "$EF_G ${EF_H}"',
    ].join('\n');
    expect([...shellReads(text)].sort()).toEqual(['EF_A', 'EF_B', 'EF_C', 'EF_D', 'EF_E']);
  });
});

describe('declarationProblems', () => {
  const section = sectionOf(
    defineSettings({ title: 'agent', source: 'a.ts', intro: 'x' }, { a: { env: 'EF_LEVEL', type: int(0), default: '1', doc: 'd' } }),
  );
  const shell = parseShellDeclarations(LIB);
  it('accepts reads that a section or the shell declares', () => {
    expect(declarationProblems([section], shell, new Map([['hack/x.sh', new Set(['EF_INSTANCE', 'EF_LEVEL', 'EF_PORT_BASE'])]]))).toEqual(
      [],
    );
  });
  it('reports undeclared and retired reads, and shell declarations nobody reads', () => {
    expect(declarationProblems([section], shell, new Map([['hack/x.sh', new Set(['EF_INSTANCE', 'EF_NEW', 'EF_OLD_THING'])]]))).toEqual([
      'hack/x.sh reads EF_NEW, which no declaration names (add a #: line to hack/lib.sh)',
      'hack/x.sh reads EF_OLD_THING, which hack/lib.sh declares retired',
      'hack/lib.sh declares EF_PORT_BASE, which no script reads (remove its #: line)',
    ]);
  });
  it('reports a shell variable declared twice', () => {
    const twice = parseShellDeclarations(`${LIB}#: EF_INSTANCE | x | y | z\n`);
    expect(declarationProblems([], twice, new Map([['f', new Set(['EF_INSTANCE', 'EF_PORT_BASE'])]]))).toEqual([
      'hack/lib.sh declares EF_INSTANCE twice',
    ]);
  });
});

describe('renderReference', () => {
  it('writes one table per section, a table of retired names, and escapes pipes', () => {
    const doc = renderReference(
      [
        {
          title: 'hack/ and make',
          source: 'hack/lib.sh',
          intro: 'Scripts.',
          rows: [{ name: 'EF_A', accepts: '1 | 3', default: '1', doc: 'a' }],
        },
        { title: 'provider', source: 'p.ts', intro: 'Cloud.', rows: [{ name: 'EF_B', accepts: 'x', default: 'unset: none', doc: 'b' }] },
      ],
      [{ name: 'EF_OLD', section: 'provider', instead: 'set EF_B' }],
    );
    expect(doc).toContain('Every setting of EdgeFarm: 2 settings of 2 environment variables');
    expect(doc).toContain('- [hack/ and make](#hack-and-make) (1)\n- [provider](#provider) (1)\n- [Retired names](#retired-names)');
    expect(doc).toContain(
      '## provider\n\nCloud. Declared in `p.ts`.\n\n| name | takes | default | meaning |\n| --- | --- | --- | --- |\n| `EF_B` | x | unset: none | b |',
    );
    expect(doc).toContain('| `EF_A` | 1 \\| 3 | 1 | a |');
    expect(doc).toContain('| `EF_OLD` | provider | set EF_B |');
    expect(doc.endsWith('\n')).toBe(true);
  });
});
