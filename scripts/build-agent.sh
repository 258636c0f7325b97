#!/usr/bin/env bash
# Builds overlay-agent as one self-contained artefact (`npm run build:agent`), in dist/agent/:
#   overlay-agent.js          the agent and every package it imports, bundled by esbuild (CommonJS, Node >= 20.12)
#   proto/overlay/v1/*.proto  loaded at run time (src/common/proto.ts looks for proto/ above the script)
#   THIRD-PARTY-LICENSES      the licences of the bundled packages
# A hypervisor needs node and this directory, nothing from npm. Built in a scratch directory
# and moved into place, so an agent starting meanwhile never reads half a bundle.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/esbuild ]; then
  echo "build-agent: node_modules/.bin/esbuild is missing (a devDependency): run npm ci" >&2
  exit 1
fi
out=dist/agent
mkdir -p dist
# One build at a time (test runs build it when stale, possibly two at once).
exec 9>dist/.agent-build.lock
flock 9
tmp=$(mktemp -d dist/.agent-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Whitespace and syntax minified (names kept, so stack traces still name functions): V8 keeps the
# script's source in the heap for lazy compilation, 1.0 MB instead of 1.6 MB; the agent's heap idle
# 0.9 MB smaller, its RSS 1 MB (docs/agent.md, "Memory and CPU").
# WebAssembly undefined: the one user is `long` (protobufjs' 64-bit integers, which the loader
# turns into Numbers), whose try of a small wasm module for 64-bit multiplication then falls back
# to its JavaScript; V8's wasm engine and compiler are never started: RSS idle 0.8-1.0 MB lower.
node_modules/.bin/esbuild src/agent/main.ts --bundle --platform=node --target=node20.12 --format=cjs \
  --minify-whitespace --minify-syntax \
  --define:WebAssembly=undefined \
  --outfile="$tmp/overlay-agent.js" --metafile="$tmp/meta.json" --log-level=warning
cp -r proto "$tmp/proto"

# Every package with a file in the bundle (nested copies included), with its licence file.
node - "$tmp/meta.json" >"$tmp/THIRD-PARTY-LICENSES" <<'EOF'
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const packages = new Set();
for (const input of Object.keys(JSON.parse(readFileSync(process.argv[2], 'utf8')).inputs)) {
  const dir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (dir) packages.add(dir[1]);
}
console.log('overlay-agent.js bundles these packages; their licences follow.');
for (const dir of [...packages].sort()) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).sort().find((name) => /^(licen[cs]e|copying)/i.test(name));
  console.log(`\n=== ${pkg.name} ${pkg.version} (${dir})`);
  console.log(file ? readFileSync(join(dir, file), 'utf8').trimEnd() : `(no licence file; package.json says ${JSON.stringify(pkg.license)})`);
}
EOF
rm "$tmp/meta.json"

chmod 0755 "$tmp" "$tmp/overlay-agent.js"
chmod -R a+rX "$tmp/proto" "$tmp/THIRD-PARTY-LICENSES"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out/overlay-agent.js: $(stat -c %s "$out/overlay-agent.js") bytes ($(du -sh "$out" | cut -f1) with proto/ and licences)"
