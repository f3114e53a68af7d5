#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node
// MALLOC_ARENA_MAX=2: sharp's guidance for glibc, whose per-thread arenas fragment under libvips' threads
// (peak RSS ~80 MB lower at -j 2); it must be set before the process starts, hence here.
import('../dist/bin/main.js').then((m) => m.main(process.argv));
