/**
 * The demo's page: one self-contained HTML file (no network, nothing to
 * build) showing each fetch style as a waterfall -- one bar per page, split
 * into its phases, on a time axis shared by all of them -- with what the
 * thread did underneath. Busy-polling draws a staircase (one page after
 * another, the thread spinning); the callback and coroutine fetchers draw
 * overlapping bars over a loop that mostly sleeps in its selector.
 *
 * The text (titles, figures, paragraphs) is HTML written here, escaped; the
 * bars are drawn on canvases by the inline script of page-script.ts from the
 * model, embedded as JSON.
 *
 * @module
 */
import type { DemoPage, Waterfall } from './model.js';
import { PHASES } from './model.js';
import { PAGE_COLOURS, renderDemoPage, type ScriptSetup } from './page-script.js';
import { escapeHtml, htmlDocument, jsonForScript } from './shell.js';

const SETUP: ScriptSetup = {
  colours: PAGE_COLOURS,
  dataId: 'iomux-data',
  sharedId: 'axis-shared',
  fitId: 'axis-fit',
  tipId: 'tip',
};

const CSS = `
.bar { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid var(--rule);
  padding: 6px 0; display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; }
.legend span { white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px;
  box-shadow: inset 0 0 0 1px rgba(0, 0, 0, 0.15); }
.swatch.failed { background: #fff; box-shadow: inset 0 0 0 2px ${PAGE_COLOURS.failed}; }
figure.waterfall { margin: 18px 0 26px; }
figcaption { margin-bottom: 4px; }
figcaption .title { font-weight: 600; font-size: 15px; margin-right: 10px; }
canvas { display: block; }
.empty { color: var(--muted); font-style: italic; }
#tip { position: fixed; z-index: 2; pointer-events: none; max-width: 60ch; padding: 6px 8px; border-radius: 4px;
  background: rgba(32, 33, 36, 0.94); color: #fff; font-size: 12px; line-height: 1.4; overflow-wrap: anywhere; }
#tip .tip-url { font-weight: 600; }
#tip .tip-error { color: #ffb3b3; }
`;

/** ms as the caption shows them: whole ms from 100 up, else one decimal; `?` when not a number. */
function ms(value: number): string {
  if (!Number.isFinite(value)) return '?';
  return `${value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)} ms`;
}

function legend(): string {
  const swatch = (colour: string, label: string): string =>
    `<span><i class="swatch" style="background:${colour}"></i>${escapeHtml(label)}</span>`;
  return [
    ...PHASES.map((p) => swatch(PAGE_COLOURS.phases[p], p)),
    `<span><i class="swatch failed"></i>failed</span>`,
    swatch(PAGE_COLOURS.asleep, 'asleep in the selector'),
    swatch(PAGE_COLOURS.running, 'running callbacks'),
    swatch(PAGE_COLOURS.busy, 'busy (spinning)'),
  ].join('\n');
}

function figure(w: Waterfall, index: number): string {
  const failed = w.pages.filter((p) => p.error !== null).length;
  const facts = [
    `wall ${ms(w.wallMs)}`,
    `cpu ${ms(w.cpuMs)}`,
    `${w.pages.length.toLocaleString('en-US')} page${w.pages.length === 1 ? '' : 's'}: ${(w.pages.length - failed).toLocaleString('en-US')} ok, ${failed.toLocaleString('en-US')} failed`,
  ];
  if (w.loop?.kind === 'loop') {
    const dropped =
      w.loop.dropped > 0 ? ` (and ${w.loop.dropped.toLocaleString('en-US')} earlier ones not recorded)` : '';
    facts.push(`${w.loop.waits.length.toLocaleString('en-US')} waits in the selector${dropped}`);
  }
  const body =
    w.pages.length === 0
      ? '<p class="empty">No pages in this waterfall: nothing was fetched.</p>'
      : `<canvas id="wf-canvas-${index}" role="img" aria-label="${escapeHtml(`${w.title}: one bar per page on a time axis in ms`)}"></canvas>`;
  return `<figure class="waterfall" id="wf-${index}">
<figcaption><span class="title">${escapeHtml(w.title)}</span><span class="facts muted">${escapeHtml(facts.join(' · '))}</span></figcaption>
${body}
</figure>`;
}

/**
 * The demo's page as one self-contained HTML document: the model embedded as
 * JSON, a figure per waterfall drawn on a canvas by an inline script (time
 * axis in ms, shared by all waterfalls or fitted to each), a legend of the
 * phases and of the loop lane, and tooltips giving each page's URL, phase
 * durations (ms) and error. Every string of the model is escaped; a model
 * with no waterfalls, or a waterfall with no pages, gives a page saying so.
 *
 * It draws the waterfalls in view first, then sets
 * `document.body.dataset.renderedMs` (ms from the script's start); the
 * others as the reader scrolls to them or the browser idles, then sets
 * `document.body.dataset.allDrawnMs`. `window.__iomuxLayout` (a
 * {@link PageLayout}) says where each bar of a drawn waterfall was drawn, in
 * CSS px, and which waterfalls are drawn.
 *
 * @example
 * writeFileSync('demo.html', demoPageHtml(page));
 */
export function demoPageHtml(page: DemoPage): string {
  const paragraphs = (texts: readonly string[]): string => texts.map((t) => `<p>${escapeHtml(t)}</p>`).join('\n');
  const figures =
    page.waterfalls.length === 0
      ? '<p class="empty">No waterfalls to show: nothing was fetched.</p>'
      : page.waterfalls.map(figure).join('\n');
  const body = `<h1>${escapeHtml(page.title)}</h1>
${paragraphs(page.intro)}
<div class="bar">
<span><label><input type="radio" name="axis" id="${SETUP.sharedId}" checked> same time axis for all</label>
<label><input type="radio" name="axis" id="${SETUP.fitId}"> fit each</label></span>
<div class="legend">${legend()}</div>
</div>
<main>
${figures}
</main>
${paragraphs(page.lesson)}
<div id="${SETUP.tipId}" role="tooltip" hidden></div>
<script type="application/json" id="${SETUP.dataId}">${jsonForScript(page, 3)}</script>
<script>(${renderDemoPage.toString()})(window, ${jsonForScript(SETUP)});</script>`;
  return htmlDocument({ title: page.title, css: CSS, body });
}

export type { PageLayout } from './page-script.js';
