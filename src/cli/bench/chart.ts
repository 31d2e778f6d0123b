/**
 * The syscall benchmark as a log-log chart (an SVG file a browser shows):
 * ns per wait against N watched fds, one panel per activity (1 ready, 1 %
 * ready, all ready), one colour per backend; solid lines are TypeScript,
 * dashed lines the C floor of the same run.
 */
import type { Cell, Variant } from './syscalls.js';

type Backend = 'select' | 'poll' | 'epoll';

const COLOURS: Record<Backend, string> = { select: '#d62728', poll: '#1f77b4', epoll: '#2ca02c' };

/** The TypeScript variant drawn per backend: through the selectors when measured, else the raw sys wait. */
const TS_VARIANTS: Record<Backend, readonly Variant[]> = {
  select: ['SelectSelector', 'select'],
  poll: ['PollSelector', 'poll.pollInto'],
  epoll: ['EpollSelector', 'epoll.pollInto'],
};

const ACTIVITIES: readonly { title: string; k: (n: number) => number }[] = [
  { title: '1 fd ready', k: () => 1 },
  { title: '1 % ready', k: (n) => Math.max(1, Math.floor(n / 100)) },
  { title: 'all ready', k: (n) => n },
];

const PANEL_W = 300;
const PANEL_H = 260;
const MARGIN = { left: 70, right: 50, top: 50, bottom: 70 };

interface Series {
  backend: Backend;
  floor: boolean;
  label: string;
  points: { n: number; ns: number }[];
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function seriesFor(cells: readonly Cell[], k: (n: number) => number): Series[] {
  const ns = [...new Set(cells.map((c) => c.n))].sort((a, b) => a - b);
  const out: Series[] = [];
  for (const backend of ['select', 'poll', 'epoll'] as const) {
    const variant = TS_VARIANTS[backend].find((v) => cells.some((c) => c.variant === v));
    if (variant === undefined) continue;
    const ts: Series = { backend, floor: false, label: `${variant} (TypeScript)`, points: [] };
    const floor: Series = { backend, floor: true, label: `${backend} (C floor)`, points: [] };
    for (const n of ns) {
      const cell = cells.find((c) => c.variant === variant && c.n === n && c.k === k(n));
      if (cell === undefined) continue;
      if (cell.tsNs !== null) ts.points.push({ n, ns: cell.tsNs });
      if (cell.floorNs !== null) floor.points.push({ n, ns: cell.floorNs });
    }
    out.push(ts, floor);
  }
  return out;
}

/**
 * Renders the cells of a `bench sys` run as a standalone SVG document.
 * Cells without a figure (select past FD_SETSIZE) leave their line short.
 */
export function syscallChartSvg(cells: readonly Cell[], title: string): string {
  const panels = ACTIVITIES.map((a) => ({ title: a.title, series: seriesFor(cells, a.k) }));
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const nValues = all.map((p) => p.n);
  const nsValues = all.map((p) => p.ns);
  // Whole decades around the data, so the gridlines fall on 10^k.
  const xMin = Math.floor(Math.log10(Math.min(...nValues, 10)));
  const xMax = Math.max(xMin + 1, Math.ceil(Math.log10(Math.max(...nValues, 10))));
  const yMin = Math.floor(Math.log10(Math.min(...nsValues, 100)));
  const yMax = Math.max(yMin + 1, Math.ceil(Math.log10(Math.max(...nsValues, 1000))));
  const width = MARGIN.left + panels.length * (PANEL_W + MARGIN.right) + 10;
  const height = MARGIN.top + PANEL_H + MARGIN.bottom + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const x0 = MARGIN.left + i * (PANEL_W + MARGIN.right);
    const y0 = MARGIN.top;
    const px = (n: number): number => x0 + ((Math.log10(n) - xMin) / (xMax - xMin)) * PANEL_W;
    const py = (ns: number): number => y0 + PANEL_H - ((Math.log10(ns) - yMin) / (yMax - yMin)) * PANEL_H;
    parts.push(`<g class="panel">`);
    parts.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 - 10}" text-anchor="middle">${escapeXml(panel.title)}</text>`);
    for (let d = xMin; d <= xMax; d++) {
      const x = px(10 ** d);
      parts.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + PANEL_H}" stroke="#ddd"/>`);
      parts.push(
        `<text x="${x}" y="${y0 + PANEL_H + 16}" text-anchor="middle">${(10 ** d).toLocaleString('en-US')}</text>`,
      );
    }
    for (let d = yMin; d <= yMax; d++) {
      const y = py(10 ** d);
      parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PANEL_W}" y2="${y}" stroke="#ddd"/>`);
      if (i === 0) parts.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${formatNs(10 ** d)}</text>`);
    }
    parts.push(`<rect x="${x0}" y="${y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#444"/>`);
    parts.push(
      `<text x="${x0 + PANEL_W / 2}" y="${y0 + PANEL_H + 34}" text-anchor="middle">N watched fds (log)</text>`,
    );
    for (const s of panel.series) {
      if (s.points.length === 0) continue;
      const d = s.points.map((p) => `${px(p.n).toFixed(1)},${py(p.ns).toFixed(1)}`).join(' ');
      const dash = s.floor ? ' stroke-dasharray="6 4"' : '';
      parts.push(
        `<polyline points="${d}" fill="none" stroke="${COLOURS[s.backend]}" stroke-width="2"${dash}><title>${escapeXml(s.label)}</title></polyline>`,
      );
      for (const p of s.points) {
        parts.push(
          `<circle cx="${px(p.n).toFixed(1)}" cy="${py(p.ns).toFixed(1)}" r="3" fill="${s.floor ? 'white' : COLOURS[s.backend]}" stroke="${COLOURS[s.backend]}"><title>${escapeXml(`${s.label}: N = ${p.n.toLocaleString('en-US')}, ${Math.round(p.ns).toLocaleString('en-US')} ns`)}</title></circle>`,
        );
      }
    }
    parts.push('</g>');
  });
  parts.push(
    `<text x="18" y="${MARGIN.top + PANEL_H / 2}" text-anchor="middle" transform="rotate(-90 18 ${MARGIN.top + PANEL_H / 2})">ns per wait (log)</text>`,
  );
  // Legend: one entry per backend, and the line styles.
  const ly = MARGIN.top + PANEL_H + 58;
  let lx = MARGIN.left;
  for (const backend of ['select', 'poll', 'epoll'] as const) {
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${COLOURS[backend]}" stroke-width="3"/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${ly + 4}">${backend}</text>`);
    lx += 90;
  }
  parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#444" stroke-width="2"/>`);
  parts.push(`<text x="${lx + 30}" y="${ly + 4}">TypeScript (iomux)</text>`);
  lx += 170;
  parts.push(
    `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#444" stroke-width="2" stroke-dasharray="6 4"/>`,
  );
  parts.push(`<text x="${lx + 30}" y="${ly + 4}">C floor, same run</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function formatNs(ns: number): string {
  if (ns >= 1e6) return `${ns / 1e6} ms`;
  if (ns >= 1e3) return `${ns / 1e3} µs`;
  return `${ns} ns`;
}
