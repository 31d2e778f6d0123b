/**
 * `iomux bench sys --html FILE`: the syscall benchmark as one self-contained
 * page -- its chart, what the C floor says (the verdicts), and its table.
 *
 * @module
 */
import { escapeHtml, htmlDocument } from './shell.js';

/** What the sys page shows. */
export interface SysPageInput {
  title: string;
  /** The chart as a standalone SVG document (`syscallChartSvg`'s output), inlined as it is: pass only SVG you made. */
  svg: string;
  /** One sentence each; shown as a list (empty when the C floor did not run). */
  verdicts: string[];
  /** The markdown table of `formatSyscallTable`: a header row, an alignment row, then one row per line. */
  table: string;
  /** Said instead of the verdicts, e.g. why the C floor is missing. */
  note?: string;
}

/** The cells of one markdown table row, `| a | b |` -> ['a', 'b']. */
function cellsOf(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());
}

/**
 * A markdown pipe table as an HTML `<table>`, columns aligned as its
 * alignment row says (`---:` right, `:---:` centre). Cells are text,
 * escaped; lines that are not table rows are left out.
 */
export function markdownTableHtml(markdown: string): string {
  const lines = markdown.split('\n').filter((l) => l.trim().startsWith('|'));
  const [header, alignment, ...rows] = lines;
  if (header === undefined) return '';
  const aligns = (alignment === undefined ? [] : cellsOf(alignment)).map((a) =>
    a.startsWith(':') && a.endsWith(':') ? 'center' : a.endsWith(':') ? 'right' : 'left',
  );
  const cell = (tag: 'th' | 'td', text: string, i: number): string =>
    `<${tag} style="text-align:${aligns[i] ?? 'left'}">${escapeHtml(text)}</${tag}>`;
  const head = `<tr>${cellsOf(header)
    .map((c, i) => cell('th', c, i))
    .join('')}</tr>`;
  const body = rows.map(
    (r) =>
      `<tr>${cellsOf(r)
        .map((c, i) => cell('td', c, i))
        .join('')}</tr>`,
  );
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table>`;
}

/**
 * The syscall benchmark's page as one self-contained HTML document: the SVG
 * chart inline, the verdicts as a list (or the note, when given, after
 * them), and the markdown table rendered as an HTML table. Text is escaped;
 * the SVG is placed as it is, less any XML declaration.
 */
export function sysPageHtml(input: SysPageInput): string {
  const svg = input.svg.replace(/^\s*<\?xml[^>]*\?>\s*/, '');
  const verdicts =
    input.verdicts.length === 0
      ? ''
      : `<h2>What the C floor of this run says</h2>\n<ul class="verdicts">\n${input.verdicts
          .map((v) => `<li>${escapeHtml(v)}</li>`)
          .join('\n')}\n</ul>`;
  const note = input.note === undefined ? '' : `<p class="note">${escapeHtml(input.note)}</p>`;
  const body = `<h1>${escapeHtml(input.title)}</h1>
<figure class="chart">
${svg}
</figure>
${verdicts}
${note}
<h2>The figures</h2>
${markdownTableHtml(input.table)}`;
  return htmlDocument({
    title: input.title,
    css: 'figure.chart svg { max-width: 100%; height: auto; }\n',
    body,
  });
}
