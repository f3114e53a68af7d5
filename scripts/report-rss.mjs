// Preloaded by the bench (`node --import`): when the process exits, writes its peak RSS in KiB to
// BENCH_RSS_FILE and, if set, its CPU time (user + system) in ms to BENCH_CPU_FILE.
import { writeFileSync } from 'node:fs';

const target = process.env.BENCH_RSS_FILE;
const cpuTarget = process.env.BENCH_CPU_FILE;
process.on('exit', () => {
  const usage = process.resourceUsage();
  if (target) writeFileSync(target, String(usage.maxRSS));
  if (cpuTarget) writeFileSync(cpuTarget, String((usage.userCPUTime + usage.systemCPUTime) / 1000));
});
