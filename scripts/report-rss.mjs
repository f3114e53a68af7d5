// Preloaded by the bench (`node --import`): writes this process's peak RSS in KiB when it exits.
import { writeFileSync } from 'node:fs';

const target = process.env.BENCH_RSS_FILE;
if (target) process.on('exit', () => writeFileSync(target, String(process.resourceUsage().maxRSS)));
