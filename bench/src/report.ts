/**
 * bench/REPORT.md: the machine, the versions, every suite's tables and the
 * speed targets of one `npm run bench` run.
 */
import { spawnSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';

import type { BenchOutput } from '#iomux/cli/bench.js';
import { findNginx, nginxVersion } from './nginx.js';
import { findPython } from './peers.js';
import { formatTargets, met, type TargetCheck } from './targets.js';

/** What one suite measured (a title, its markdown, its figures) and the project's targets for it. */
export interface SuiteOutput extends BenchOutput {
  targets: TargetCheck[];
}

/** The first line a command prints (stdout or stderr), or null when it cannot run. */
function versionOf(command: string, args: string[]): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) return null;
  const line = `${r.stdout}${r.stderr}`.trim().split('\n')[0];
  return line === undefined || line === '' ? null : line.trim();
}

/** What the report says about the machine and the peers' versions. */
export function describeMachine(): string[] {
  const cpu = cpus();
  const python = findPython();
  const uvloopPython = findPython('uvloop');
  const nginx = findNginx();
  const lines = [
    `- CPU: ${cpu[0]?.model.trim() ?? 'unknown'} x ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}`,
    `- Node ${process.version} (V8 ${process.versions.v8})`,
    `- C floor: ${versionOf('cc', ['--version']) ?? 'no C compiler'}`,
    `- Python: ${python === null ? 'not found' : (versionOf(python, ['--version']) ?? python)}`,
    `- uvloop: ${uvloopPython === null ? 'not installed (bench/setup installs python3-uvloop)' : (versionOf(uvloopPython, ['-c', 'import uvloop; print("uvloop", uvloop.__version__)']) ?? 'installed')}`,
    `- nginx: ${nginx === null ? 'not installed (bench/setup installs nginx-light)' : nginxVersion(nginx)}`,
  ];
  return lines;
}

/** Markdown headings one level down, so each suite sits under the report's title. */
function demote(title: string): string {
  return title.replace(/^# /, '## ');
}

/** The whole report as markdown. */
export function formatReport(
  sections: readonly SuiteOutput[],
  meta: { started: Date; quick: boolean; svgName: string },
): string {
  const targets = sections.flatMap((s) => s.targets);
  const metCount = targets.filter(met).length;
  const parts = [
    '# iomux benchmark report',
    '',
    `Run by \`npm run bench${meta.quick ? ' -- --quick' : ''}\` on ${meta.started.toISOString().slice(0, 10)}, from ${meta.started.toISOString().slice(11, 16)} UTC.`,
    'Every figure is the median of the runs its section names; every peer ran in the same run, interleaved',
    'where the suite allows, so drift in the machine hits all sides alike. A 2-core VM is noisy: compare',
    'ratios within one report, not figures across reports.',
    '',
    ...describeMachine(),
    '',
    `## Targets: ${metCount} of ${targets.length} met in this run`,
    '',
    formatTargets(targets),
    '',
  ];
  for (const section of sections) {
    parts.push(demote(section.title), '', section.body, '');
    if (section.title.includes('select vs poll vs epoll')) {
      parts.push(`![ns per wait vs N, per backend and activity](${meta.svgName})`, '');
    }
  }
  return `${parts.join('\n')}`;
}
