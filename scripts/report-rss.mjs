// Preloaded by the bench (`node --import`): writes this process's peak RSS in KiB, and the CPU seconds of
// all its threads (libvips' included), when it exits. CPU time is far less sensitive than wall time to other
// load on a shared machine.
import { writeFileSync } from 'node:fs';

const target = process.env.BENCH_RSS_FILE;
if (target) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    writeFileSync(target, `${usage.maxRSS} ${(usage.userCPUTime + usage.systemCPUTime) / 1e6}`);
  });
}
