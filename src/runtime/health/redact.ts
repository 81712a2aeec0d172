/**
 * Credentials must never reach a probe body or a log: health endpoints are often reachable by anyone
 * who can reach the pod. These helpers strip them from URLs and from error messages.
 */

/** The URL with its password (and query string, which often carries tokens) replaced by `***`. */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : new URL(url.href);
  } catch {
    return '<invalid url>';
  }
  if (parsed.password) parsed.password = '***';
  if (parsed.search) parsed.search = '?***';
  return parsed.href;
}

/** Replace every occurrence of each secret in `text` by `***`. Empty secrets are ignored. */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join('***');
    // A URL-encoded password shows up encoded inside URLs quoted by drivers.
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join('***');
  }
  return out;
}

/** The secrets hidden in a connection URL: its password, and the raw URL itself. */
export function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const password = parsed.password ? decodeURIComponent(parsed.password) : '';
    return password ? [url, parsed.password, password] : [];
  } catch {
    return [url];
  }
}
