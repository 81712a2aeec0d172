// Kubernetes label selectors as they arrive in a `labelSelector` query parameter (`queue=work,env in (a,b)`),
// parsed with apimachinery's grammar and checked with its rules, so a selector the HPA sends means here what
// it means to the apiserver, and a malformed one is a 400 with a reason rather than a silent "matches all".
import { ScalingError, ScalingErrorCode } from '../errors.ts';

/** One requirement of a selector. */
export interface LabelRequirement {
  key: string;
  operator: 'exists' | 'notExists' | 'equals' | 'notEquals' | 'in' | 'notIn' | 'greaterThan' | 'lessThan';
  /** The values of `equals`, `notEquals` (one), `in`, `notIn` (one or more), `greaterThan`, `lessThan` (one integer). */
  values: readonly string[];
}

/** A parsed selector: every requirement must hold (an empty one matches everything). */
export interface LabelSelector {
  readonly requirements: readonly LabelRequirement[];
  /** True when `labels` satisfies every requirement. */
  matches(labels: Readonly<Record<string, string>>): boolean;
  /** The value an `equals` requirement (or a one-value `in`) fixes for `key`, if any. */
  exactValue(key: string): string | undefined;
}

/** A {@link ScalingError} `CAP_ERR_SCALING_SELECTOR`: the message is the reason a client sees. */
function syntaxError(message: string): ScalingError {
  return new ScalingError(ScalingErrorCode.selector, message);
}

// apimachinery's IsQualifiedName and IsValidLabelValue.
const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const INTEGER = /^-?\d+$/;

function checkKey(key: string): void {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !PREFIX.test(prefix))) {
    throw syntaxError(`invalid label key "${key}": the prefix must be a DNS subdomain`);
  }
  if (!NAME.test(name)) {
    throw syntaxError(
      `invalid label key "${key}": a name of at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
    );
  }
}

function checkValue(key: string, value: string): void {
  if (value.length > 63 || !VALUE.test(value)) {
    throw syntaxError(
      `invalid value "${value}" for label "${key}": at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
    );
  }
}

type Token = { kind: 'word' | 'op' | 'open' | 'close' | 'comma' | 'not'; text: string };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(') {
      tokens.push({ kind: 'open', text: c });
      i++;
    } else if (c === ')') {
      tokens.push({ kind: 'close', text: c });
      i++;
    } else if (c === ',') {
      tokens.push({ kind: 'comma', text: c });
      i++;
    } else if (input.startsWith('==', i) || input.startsWith('!=', i)) {
      tokens.push({ kind: 'op', text: input.slice(i, i + 2) });
      i += 2;
    } else if (c === '=' || c === '>' || c === '<') {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else if (c === '!') {
      tokens.push({ kind: 'not', text: c });
      i++;
    } else {
      let j = i;
      while (j < input.length && !' \t(),=!<>'.includes(input[j]!)) j++;
      tokens.push({ kind: 'word', text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

/**
 * Parse a label selector (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`,
 * comma-separated). Throws a `ScalingError` (`CAP_ERR_SCALING_SELECTOR`) whose message says what is wrong and where.
 */
export function parseLabelSelector(input: string): LabelSelector {
  const tokens = tokenize(input);
  const requirements: LabelRequirement[] = [];
  let at = 0;
  const peek = () => tokens[at];
  const fail = (what: string): never => {
    const near = tokens[at]?.text;
    throw syntaxError(
      `invalid label selector "${input}": ${what}${near === undefined ? ' at the end' : ` near "${near}"`}`,
    );
  };
  const word = (what: string): string => {
    const t = peek();
    if (t?.kind !== 'word') fail(`expected ${what}`);
    at++;
    return t!.text;
  };
  while (at < tokens.length) {
    if (peek()?.kind === 'not') {
      at++;
      const key = word('a label key after "!"');
      checkKey(key);
      requirements.push({ key, operator: 'notExists', values: [] });
    } else {
      const key = word('a label key');
      checkKey(key);
      const next = peek();
      if (next === undefined || next.kind === 'comma') {
        requirements.push({ key, operator: 'exists', values: [] });
      } else if (next.kind === 'op') {
        at++;
        // An empty value is allowed (`a=` selects labels set to the empty string).
        const value = peek()?.kind === 'word' ? word('a value') : '';
        if (next.text === '>' || next.text === '<') {
          if (!INTEGER.test(value)) fail(`"${key}${next.text}" needs an integer value`);
          requirements.push({
            key,
            operator: next.text === '>' ? 'greaterThan' : 'lessThan',
            values: [value],
          });
        } else {
          checkValue(key, value);
          requirements.push({ key, operator: next.text === '!=' ? 'notEquals' : 'equals', values: [value] });
        }
      } else if (next.kind === 'word' && (next.text === 'in' || next.text === 'notin')) {
        at++;
        if (peek()?.kind !== 'open') fail(`expected "(" after "${next.text}"`);
        at++;
        const values: string[] = [];
        for (;;) {
          const value = peek()?.kind === 'word' ? word('a value') : '';
          checkValue(key, value);
          values.push(value);
          const t = peek();
          if (t?.kind === 'comma') {
            at++;
          } else if (t?.kind === 'close') {
            at++;
            break;
          } else {
            fail('expected "," or ")" in a value set');
          }
        }
        requirements.push({ key, operator: next.text === 'in' ? 'in' : 'notIn', values });
      } else {
        fail(`expected an operator after "${key}"`);
      }
    }
    if (at < tokens.length) {
      if (peek()?.kind !== 'comma') fail('expected ","');
      at++;
      if (at === tokens.length) fail('expected a requirement after ","');
    }
  }
  return selectorOf(requirements);
}

function holds(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'exists':
      return has;
    case 'notExists':
      return !has;
    case 'equals':
    case 'in':
      return value !== undefined && r.values.includes(value);
    case 'notEquals':
    case 'notIn':
      return value === undefined || !r.values.includes(value);
    case 'greaterThan':
    case 'lessThan': {
      if (value === undefined || !INTEGER.test(value)) return false;
      const [a, b] = [BigInt(value), BigInt(r.values[0]!)];
      return r.operator === 'greaterThan' ? a > b : a < b;
    }
  }
}

function selectorOf(requirements: LabelRequirement[]): LabelSelector {
  return {
    requirements,
    matches: (labels) => requirements.every((r) => holds(r, labels)),
    exactValue: (key) => {
      const fixed = requirements.find(
        (r) => r.key === key && (r.operator === 'equals' || (r.operator === 'in' && r.values.length === 1)),
      );
      return fixed?.values[0];
    },
  };
}
