/**
 * `edgefarm completion bash|zsh`: a completion script generated from the commander program's own tree (its commands,
 * options and option choices), so it cannot go stale as commands are added. zsh loads the same function through
 * bashcompinit (shipped with zsh), one script to keep right instead of two.
 */
import type { Command, Option } from 'commander';

interface Level {
  /** The command path below the program ("" for the program itself, "token create"). */
  path: string;
  words: string[];
  /** Per option flag taking a value: its choices, or 'file' for paths, or [] (no completion). */
  values: Map<string, string[] | 'file'>;
}

function valuesOf(o: Option): string[] | 'file' | undefined {
  if (!o.required && !o.optional) return undefined;
  if (o.argChoices) return o.argChoices;
  return /<(file|dir|kubeconfig)>/.test(o.flags) ? 'file' : [];
}

function levels(cmd: Command, path: string, out: Level[]): Level[] {
  const values = new Map<string, string[] | 'file'>();
  const flags: string[] = [];
  for (const o of cmd.options) {
    for (const f of [o.short, o.long]) {
      if (!f) continue;
      flags.push(f);
      const v = valuesOf(o);
      if (v !== undefined) values.set(f, v);
    }
  }
  const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map((c) => c.name());
  out.push({ path, words: [...subs, ...flags, '--help'], values });
  for (const c of cmd.commands) levels(c, path ? `${path} ${c.name()}` : c.name(), out);
  return out;
}

/** Only [a-z0-9 -] reach the script: names and flags come from our own tree, this keeps it so. */
const safe = (s: string) => {
  if (!/^[A-Za-z0-9 ._-]*$/.test(s)) throw new Error(`completion: ${JSON.stringify(s)} cannot be quoted`);
  return s;
};

export function bashCompletion(program: Command, names: string[]): string {
  const all = levels(program, '', []);
  const fn = `_${safe(program.name()).replace(/[^A-Za-z0-9]/g, '_')}_complete`;
  const transitions = all
    .filter((l) => l.path)
    .map((l) => {
      const at = l.path.lastIndexOf(' ');
      return `"${safe(at < 0 ? '' : l.path.slice(0, at))}:${safe(at < 0 ? l.path : l.path.slice(at + 1))}"`;
    });
  const valueCases = all.flatMap((l) =>
    [...l.values].map(([flag, v]) => {
      const reply = v === 'file' ? 'compgen -f -- "$cur"' : `compgen -W "${safe(v.join(' '))}" -- "$cur"`;
      return `    "${safe(l.path)}:${safe(flag)}") COMPREPLY=($(${reply})); return ;;`;
    }),
  );
  const wordCases = all.map((l) => `    "${safe(l.path)}") words="${safe(l.words.join(' '))}" ;;`);
  return `# ${names.join(' and ')} completion (bash; zsh through bashcompinit), generated from the command tree by:
#   ${names[0]} completion bash
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" w i words=""
  [[ $COMP_CWORD -gt 0 ]] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$cmd:$w" in
      ${transitions.join('|') || '"-"'}) cmd="\${cmd:+$cmd }$w" ;;
    esac
  done
  case "$cmd:$prev" in
${valueCases.join('\n')}
  esac
  case "$cmd" in
${wordCases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
${names.map((n) => `complete -F ${fn} ${safe(n)}`).join('\n')}
`;
}

export function zshCompletion(program: Command, names: string[]): string {
  return `#compdef ${names.map(safe).join(' ')}
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program, names)}`;
}
