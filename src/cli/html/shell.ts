/**
 * What the CLI's HTML pages share: escaping, and the shell of a
 * self-contained page (inline CSS, no network: a reader opens the file as
 * it is, offline, with no build step).
 *
 * @module
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes text for HTML element content and quoted attribute values: `&`,
 * `<`, `>`, `"` and `'` become entities, so a title or URL from a fetch can
 * never open a tag or end an attribute.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * `value` as JSON that is safe inside a `<script>` element: every `<` becomes
 * `\u003c` (so neither `</script>` nor `<!--` in a string can end or bend the
 * element) and U+2028/U+2029 are escaped too. `JSON.parse` of the element's
 * text gives the value back unchanged -- but for its numbers when `decimals`
 * is given: each is rounded to that many decimals (a page of 10,000 fetches
 * is a quarter smaller with times in whole microseconds, and loads sooner).
 */
export function jsonForScript(value: unknown, decimals?: number): string {
  const scale = decimals === undefined ? 0 : 10 ** decimals;
  const round = (_key: string, v: unknown): unknown =>
    typeof v === 'number' && Number.isFinite(v) ? Math.round(v * scale) / scale : v;
  return JSON.stringify(value, decimals === undefined ? undefined : round)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** The look every page shares: system fonts, a readable measure, tables and lists. */
const BASE_CSS = `
:root { color-scheme: light; --fg: #1b1b1b; --muted: #5f6368; --rule: #dadce0; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 16px 24px 48px; max-width: 1240px; color: var(--fg); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 22px; margin: 8px 0 12px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
p { margin: 6px 0; max-width: 80ch; }
.muted { color: var(--muted); }
.note { border-left: 3px solid #f2a900; padding: 4px 10px; background: #fff8e1; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 10px; }
th { background: #f5f5f5; }
figure { margin: 16px 0; }
`;

/**
 * A whole HTML document: doctype, UTF-8, the shared CSS then `css`, the
 * escaped `title` and `body` as given (already HTML: escape what came from
 * outside before passing it).
 */
export function htmlDocument({ title, css = '', body }: { title: string; css?: string; body: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${BASE_CSS}${css}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
