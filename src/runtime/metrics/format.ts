// Exposition-format primitives shared by the serializer, the collector cache and the HTTP handler.

/** Prometheus text exposition format 0.0.4, what Prometheus reads when nothing else is negotiated. */
export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** OpenMetrics 1.0.0 text format, chosen when the scraper asks for `application/openmetrics-text`. */
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** Which exposition format to write: Prometheus text 0.0.4 or OpenMetrics 1.0.0. */
export type ExpositionFormat = 'text' | 'openmetrics';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** True if `name` is a valid Prometheus metric name. */
export function isValidMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

/** True if `name` is a valid label name (names starting with `__` are reserved for Prometheus). */
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith('__');
}

const NEEDS_LABEL_ESCAPE = /[\\"\n]/;

/** Escape a label value: backslash, double quote and line feed (both formats agree on these). */
export function escapeLabelValue(value: string): string {
  // Most values need nothing; the regex test is far cheaper than three replaces.
  if (!NEEDS_LABEL_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Escape HELP text. Text 0.0.4 escapes only backslash and line feed; OpenMetrics also escapes the
 * double quote, and a raw quote there would be a parse error.
 */
export function escapeHelp(help: string, format: ExpositionFormat): string {
  let out = help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  if (format === 'openmetrics') out = out.replace(/"/g, '\\"');
  return out;
}

/** A sample value as the formats spell it: `NaN`, `+Inf`, `-Inf`, otherwise JavaScript's shortest form. */
export function formatValue(value: number): string {
  if (Number.isFinite(value)) return `${value}`;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}

/**
 * Render a label set as `a="x",b="y"` (without braces), default labels appended for names the set
 * lacks. Undefined values are skipped, like prom-client does.
 */
export function renderLabelPairs(
  labels: Readonly<Record<string, unknown>> | undefined,
  defaults?: Readonly<Record<string, unknown>>,
): string {
  let out = '';
  if (labels) {
    for (const key in labels) {
      const v = labels[key];
      if (v === undefined) continue;
      out += `${out ? ',' : ''}${key}="${escapeLabelValue(String(v))}"`;
    }
  }
  if (defaults) {
    for (const key in defaults) {
      if (labels && labels[key] !== undefined) continue;
      const v = defaults[key];
      if (v === undefined) continue;
      out += `${out ? ',' : ''}${key}="${escapeLabelValue(String(v))}"`;
    }
  }
  return out;
}

/**
 * Pick the format from an `Accept` header: OpenMetrics when `application/openmetrics-text` is
 * acceptable (q > 0) and preferred at least as much as `text/plain`; text 0.0.4 otherwise.
 */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (!accept) return 'text';
  let om = 0;
  let text = 0;
  for (const part of accept.split(',')) {
    const [mediaRaw, ...params] = part.split(';');
    const media = mediaRaw!.trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q' && v !== undefined) {
        const n = Number.parseFloat(v);
        q = Number.isNaN(n) ? 0 : n;
      }
    }
    if (media === 'application/openmetrics-text') om = Math.max(om, q);
    else if (media === 'text/plain' || media === 'text/*' || media === '*/*') text = Math.max(text, q);
  }
  return om > 0 && om >= text ? 'openmetrics' : 'text';
}

/** The Content-Type header for a format. */
export function contentTypeOf(format: ExpositionFormat): string {
  return format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE;
}
