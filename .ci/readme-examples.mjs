#!/usr/bin/env node
// Runs README.md's TypeScript examples on the Node that runs this script
// (.ci/node-lines runs it with each maintained line's official binary).
//
// Every ```ts block is type-checked and compiled with the project's own tsc
// against the built package (dist/, imported as 'iomux' through a symlink),
// then run in its own process. The examples that fetch from
// 127.0.0.1:8080 get the embedded server (`iomux serve`) on a free port
// instead; the worker example is started as a Worker and must greet a client.
// Exits non-zero on the first example that fails to compile, throws, or
// does not finish within 20 s.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
if (blocks.length === 0) throw new Error('README.md has no ```ts examples');

const dir = mkdtempSync(join(tmpdir(), 'iomux-readme-'));
let server = null;
process.on('exit', () => {
  server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

// A project that has iomux installed: the repository itself, built.
mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
symlinkSync(root, join(dir, 'node_modules', 'iomux'));
symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      target: 'es2022',
      lib: ['es2022', 'esnext.disposable'],
      strict: true,
      skipLibCheck: true,
      types: ['node'],
      outDir: 'out',
    },
    include: ['*.mts'],
  }),
);

// The embedded shop, for the examples that talk to a server on port 8080.
server = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = /listening http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`iomux serve exited (${code}) before listening`)));
});

// The TLS example reads a certificate for localhost, made as its README text says.
if (blocks.some((code) => code.includes("'cert.pem'"))) {
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '365',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  if (made.status !== 0) {
    console.error(`openssl could not make the TLS example's certificate:\n${made.stderr}`);
    process.exit(1);
  }
}

const names = blocks.map((code, i) => {
  const name = code.includes('workerData') ? `worker${i + 1}` : `example${i + 1}`;
  writeFileSync(join(dir, `${name}.mts`), code.replaceAll('8080', String(port)));
  return name;
});

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], {
  encoding: 'utf8',
});
if (tsc.status !== 0) {
  console.error(`README examples do not compile:\n${tsc.stdout}${tsc.stderr}`);
  process.exit(1);
}

/** Runs one compiled example to its end: exit code 0 within the time limit. */
function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`exit ${code ?? signal}\n${output}`));
    });
  });
}

/** A port nobody listens on now: bound to 0, then released. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The worker example serves forever: a driver starts it on a free port,
// reads its greeting, and ends.
const driver = `
import { Worker } from 'node:worker_threads';
import { connect } from 'node:net';
const port = ${await freePort()};
const worker = new Worker(new URL(process.argv[2], import.meta.url), { workerData: { port } });
worker.on('error', (e) => { console.error(e); process.exit(1); });
let text = '';
for (let attempt = 0; ; attempt++) {
  try {
    text = await new Promise((resolve, reject) => {
      const c = connect(port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('end', () => resolve(got));
      c.on('error', reject);
    });
    break;
  } catch (e) {
    if (attempt === 100) throw e;
    await new Promise((r) => setTimeout(r, 50));
  }
}
if (text !== 'hello from a worker\\n') throw new Error('worker said ' + JSON.stringify(text));
await worker.terminate();
`;
writeFileSync(join(dir, 'out', 'drive-worker.mjs'), driver);

let failed = 0;
for (const name of names) {
  const args = name.startsWith('worker') ? ['out/drive-worker.mjs', `./${name}.mjs`] : [`out/${name}.mjs`];
  const t0 = performance.now();
  try {
    await run(args);
    console.log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
console.log(`README examples on node ${process.version}: ${names.length - failed} of ${names.length} ran`);
server.kill();
process.exitCode = failed === 0 ? 0 : 1;
