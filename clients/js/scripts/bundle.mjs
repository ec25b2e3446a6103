// The client as the example page loads it: the ES modules that tsc makes
// from src/ (no declarations), in examples/chat/web/chatmux-client/, which
// the example server embeds. The files are committed, so the server builds
// with Go alone; this script makes them and checks them.
//
//   node scripts/bundle.mjs           writes them (npm run bundle)
//   node scripts/bundle.mjs --check   fails unless the committed files are
//                                     byte for byte what the sources give
//                                     (npm run check:bundle, part of npm test)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.resolve(pkg, '../../examples/chat/web/chatmux-client');
const check = process.argv.includes('--check');

const out = mkdtempSync(path.join(tmpdir(), 'chatmux-bundle-'));
try {
  execFileSync(
    process.execPath,
    [path.join(pkg, 'node_modules/typescript/bin/tsc'), '-p', path.join(pkg, 'tsconfig.json'), '--outDir', out, '--declaration', 'false'],
    { stdio: 'inherit' },
  );
  const built = jsFiles(out);
  if (check) {
    const problems = [];
    const committed = jsFiles(target);
    for (const f of built) {
      if (!committed.includes(f)) problems.push(`${f} is missing`);
      else if (!readFileSync(path.join(out, f)).equals(readFileSync(path.join(target, f)))) problems.push(`${f} differs`);
    }
    for (const f of committed) if (!built.includes(f)) problems.push(`${f} is not made from the sources`);
    if (problems.length) {
      console.error(`examples/chat/web/chatmux-client is not what clients/js/src gives:\n  ${problems.join('\n  ')}\nRun \`npm run bundle\` in clients/js and commit the result.`);
      process.exitCode = 1;
    } else {
      console.log(`examples/chat/web/chatmux-client: ${built.length} files, identical to a fresh build`);
    }
  } else {
    mkdirSync(target, { recursive: true });
    for (const f of jsFiles(target)) if (!built.includes(f)) rmSync(path.join(target, f));
    for (const f of built) writeFileSync(path.join(target, f), readFileSync(path.join(out, f)));
    console.log(`wrote ${built.length} files to examples/chat/web/chatmux-client`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

function jsFiles(dir) {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  } catch {
    return [];
  }
}
