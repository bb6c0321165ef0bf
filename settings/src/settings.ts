/**
 * Settings from the environment: each binary declares its settings once, with {@link defineSettings} (variable name,
 * type, default and a one-line meaning each), and its main.ts hands the environment record to that declaration's
 * `parse`. The same declaration renders the binary's table in docs/reference/settings.md (see reference.ts).
 *
 * Contract of `parse`: a variable that is unset or empty (after trimming) takes its default; a set value goes through
 * its type's parser; every problem is collected and thrown at once as one {@link ConfigError}, each naming the
 * variable and the value. Defaults are written as the text a user would set, so they pass the same parser.
 */

/** An environment record: what main.ts passes (process.env), or one a test builds. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration that cannot be used: `problems` names every bad or missing variable, one entry each. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: ErrorOptions) {
    super(`invalid configuration: ${problems.join('; ')}`, options);
    this.problems = problems;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}

/** Thrown by a {@link Type}'s parser for a text it does not accept; the message says why (or is empty). */
export class ValueError extends Error {
  override name = 'ValueError';
}

/** How a setting's text becomes a value. */
export interface Type<T> {
  /** What the setting takes, for the reference and for error messages, e.g. "integer 1-65535". */
  readonly accepts: string;
  /** The value of a set text (trimmed, never empty); throws {@link ValueError} when the text is not accepted. */
  parse(text: string): T;
}

interface SpecBase<T> {
  /** The environment variable. */
  env: string;
  type: Type<T>;
  /** What the setting means, one line. */
  doc: string;
}

/**
 * One setting. Exactly one of: `required` (no default: unset is a problem), `default` (the text used when unset),
 * `derive` (the text used when unset, computed from the environment, e.g. from another setting; `defaultText` says
 * how for the reference), or `unset` (no value: the parsed value is undefined; the text says what that means).
 */
export type Spec<T> = SpecBase<T> &
  ({ required: true } | { default: string } | { derive: (env: Env) => string; defaultText: string } | { unset: string });

/** The value type of a spec: T, or T | undefined for a spec that may stay unset. */
export type ValueOf<P> = P extends { type: Type<infer T> } ? (P extends { unset: string } ? T | undefined : T) : never;

export type Values<S> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** Where a declaration belongs, for the reference. */
export interface Section {
  /** The heading: the binary or harness, e.g. "provider". */
  title: string;
  /** The file holding the declaration. */
  source: string;
  /** One or two sentences: what reads these settings, and how they reach it. */
  intro: string;
}

/** A row of the reference. */
export interface SettingRow {
  name: string;
  accepts: string;
  default: string;
  doc: string;
}

/** Reports one more problem found by a cross-setting check. */
export type Problem = (message: string) => void;

/** A binary's settings: parses an environment record into typed values; lists its rows for the reference. */
export class Settings<S extends Record<string, Spec<unknown>>> {
  constructor(
    readonly section: Section,
    readonly specs: S,
    /** Names no longer read, each with what to set instead: `parse` refuses an environment that sets one. */
    readonly retired: Readonly<Record<string, string>> = {},
  ) {
    const seen = new Set<string>();
    for (const spec of Object.values(specs)) {
      if (seen.has(spec.env)) throw new Error(`${section.title}: ${spec.env} is declared twice`);
      seen.add(spec.env);
      if (spec.env in retired) throw new Error(`${section.title}: ${spec.env} is both declared and retired`);
    }
  }

  /**
   * The values of every setting. `check` runs once every setting parsed, for rules between settings; what it reports
   * joins the other problems. Throws {@link ConfigError} naming every problem.
   */
  parse(env: Env, check?: (values: Values<S>, problem: Problem) => void): Values<S> {
    const problems: string[] = [];
    for (const [name, instead] of Object.entries(this.retired)) {
      if (env[name] !== undefined) problems.push(`${name} is no longer read: ${instead}`);
    }
    const values: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(this.specs)) {
      const set = env[spec.env]?.trim() ?? '';
      let text = set;
      let from = `${spec.env}="${set}"`;
      if (set === '') {
        if ('required' in spec) {
          problems.push(`${spec.env} is required (${spec.doc})`);
          continue;
        }
        if ('unset' in spec) {
          values[key] = undefined;
          continue;
        }
        text = 'default' in spec ? spec.default : spec.derive(env);
        from = `${spec.env} (unset) default "${text}"`;
      }
      try {
        values[key] = spec.type.parse(text);
      } catch (err) {
        if (!(err instanceof ValueError)) throw err;
        problems.push(`${from}: ${err.message || `expected ${spec.type.accepts}`}`);
      }
    }
    if (problems.length === 0 && check) check(values as Values<S>, (message) => problems.push(message));
    if (problems.length > 0) throw new ConfigError(problems);
    return values as Values<S>;
  }

  /** One row per setting, in declaration order. */
  rows(): SettingRow[] {
    return Object.values(this.specs).map((spec) => ({
      name: spec.env,
      accepts: spec.type.accepts,
      default:
        'required' in spec ? 'required' : 'unset' in spec ? `unset: ${spec.unset}` : 'default' in spec ? spec.default : spec.defaultText,
      doc: spec.doc,
    }));
  }
}

/** Declares a binary's settings (see {@link Spec}); keys are the names of the parsed values. */
export function defineSettings<const S extends Record<string, Spec<unknown>>>(
  section: Section,
  specs: S,
  options: { retired?: Record<string, string> } = {},
): Settings<S> {
  return new Settings(section, specs, options.retired);
}

// ---- types ----

/** Any text. */
export function text(accepts = 'text'): Type<string> {
  return { accepts, parse: (t) => t };
}

/** A whole number from min to max. */
export function int(min: number, max: number = Number.MAX_SAFE_INTEGER, accepts?: string): Type<number> {
  const what = accepts ?? (max === Number.MAX_SAFE_INTEGER ? `integer >= ${min}` : `integer ${min}-${max}`);
  return {
    accepts: what,
    parse: (t) => {
      const n = /^[-+]?\d+$/.test(t) ? Number(t) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new ValueError(`expected ${what}`);
      return n;
    },
  };
}

/** A number (fractions allowed) from min to max. */
export function number(min: number, max = Number.MAX_VALUE, accepts?: string): Type<number> {
  const what = accepts ?? (max === Number.MAX_VALUE ? `number >= ${min}` : `number ${min}-${max}`);
  return {
    accepts: what,
    parse: (t) => {
      const n = /^[-+]?(\d+\.?\d*|\.\d+)$/.test(t) ? Number(t) : NaN;
      if (!Number.isFinite(n) || n < min || n > max) throw new ValueError(`expected ${what}`);
      return n;
    },
  };
}

/** A TCP port. */
export function port(): Type<number> {
  return int(1, 65535, 'TCP port');
}

/** One of the given words. */
export function oneOf<const W extends string>(words: readonly W[]): Type<W> {
  const accepts = words.join(' | ');
  return {
    accepts,
    parse: (t) => {
      if (!(words as readonly string[]).includes(t)) throw new ValueError(`expected one of ${words.join(', ')}`);
      return t as W;
    },
  };
}

/** The levels of pino, the logger of every EdgeFarm binary. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A pino log level. */
export function logLevel(): Type<(typeof LOG_LEVELS)[number]> {
  return oneOf(LOG_LEVELS);
}

/** `1` (true) or `0` (false). */
export function flag(): Type<boolean> {
  return {
    accepts: '1 | 0',
    parse: (t) => {
      if (t !== '1' && t !== '0') throw new ValueError('expected 1 (on) or 0 (off)');
      return t === '1';
    },
  };
}

/** An absolute path, normalised (no trailing slash); `belowRoot` refuses `/` itself. */
export function absolutePath(options: { belowRoot?: boolean } = {}): Type<string> {
  const accepts = options.belowRoot ? 'absolute path below /' : 'absolute path';
  return {
    accepts,
    parse: (t) => {
      if (!t.startsWith('/')) throw new ValueError(`expected an ${accepts}`);
      const normal = normalise(t);
      if (options.belowRoot && normal === '/') throw new ValueError(`expected an ${accepts}`);
      return normal;
    },
  };
}

/** A comma-separated list of `item`s (blanks around commas ignored; at least one). */
export function list<T>(item: Type<T>, accepts = `comma-separated ${item.accepts}`): Type<T[]> {
  return {
    accepts,
    parse: (t) =>
      t.split(',').map((part, i) => {
        try {
          return item.parse(part.trim());
        } catch (err) {
          if (!(err instanceof ValueError)) throw err;
          throw new ValueError(`item ${i + 1} "${part.trim()}": ${err.message || `expected ${item.accepts}`}`);
        }
      }),
  };
}

/** A type of one's own: `parse` returns the value or throws {@link ValueError}. */
export function custom<T>(accepts: string, parse: (text: string) => T): Type<T> {
  return { accepts, parse };
}

function normalise(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
