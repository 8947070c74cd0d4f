#ifndef SECURECHAT_ALLOCATION_COUNTER_H
#define SECURECHAT_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, memalign family) made by the calling thread since
/// the process started. Test-only: this target replaces the allocator entry points of the test
/// binary with counting wrappers around glibc's own.
uint64_t securechat_thread_allocations(void);

/// 1 when allocations are counted; 0 in a build under a sanitizer, which keeps its own allocator.
int securechat_allocation_counting(void);
#endif
