// cp.async (cuda_pipeline.h) for the fiber emulator (emu_rt.h): each CUDA thread's open copies and committed
// groups, by its index in the block. A copy's destination reads as NaN (0x7fc0 in every 16-bit half: NaN as bf16,
// fp16 and float) from the issue until the thread's __pipeline_wait_prior lets its group land, the worst timing
// CUDA allows; the source is read at issue so that AddressSanitizer checks it there. One definition per test
// program: include it from the .cpp, after emu_rt.h.
#pragma once

#include <deque>
#include <vector>

struct emu_copy {
    void *dst;
    const void *src;
};
static std::vector<std::vector<emu_copy>> g_open(1024);
static std::vector<std::deque<std::vector<emu_copy>>> g_groups(1024);
void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes) {
    if (bytes != 16 || (uintptr_t)dst % 16 || (uintptr_t)src % 16) emu_fail("cp.async: 16 bytes, 16-byte aligned");
    unsigned char probe[16];
    memcpy(probe, src, 16);  // AddressSanitizer checks the source at issue
    for (int i = 0; i < 8; i++) ((uint16_t *)dst)[i] = 0x7fc0;  // NaN until the group lands
    g_open[emu_tid].push_back({dst, src});
}
void __pipeline_commit() {
    g_groups[emu_tid].push_back(g_open[emu_tid]);
    g_open[emu_tid].clear();
}
void __pipeline_wait_prior(size_t prior) {
    std::deque<std::vector<emu_copy>> &q = g_groups[emu_tid];
    while (q.size() > prior) {
        for (const emu_copy &c : q.front()) memcpy(c.dst, c.src, 16);
        q.pop_front();
    }
}
