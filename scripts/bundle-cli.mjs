// Bundles the CLI into dist/bin/ (run by `npm run build`). A whole process pays for every ES module it
// loads: one file instead of ~40 of ours plus zod's many saves ~35 ms per run. sharp (native), the AWS SDK
// and esbuild stay external and load only when used; deploy/destroy become a lazy chunk. dist/bin/ sits at
// the same depth as dist/cli/, so paths the code builds from import.meta.url ('../../assets', ...) hold.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const outdir = new URL('../dist/bin/', import.meta.url).pathname;
// Chunk names carry a content hash, so each build adds new files: start empty, or chunks of every
// earlier build pile up (and ship in the npm tarball).
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: new URL('../src/cli/main.ts', import.meta.url).pathname },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['sharp', '@aws-sdk/*', 'esbuild', 'yazl'],
  // CommonJS dependencies (cli-progress, commander) call require() for Node built-ins, which ESM lacks.
  banner: { js: "import { createRequire as __imgPipelineRequire } from 'node:module'; const require = __imgPipelineRequire(import.meta.url);" },
  logLevel: 'warning',
});
