// CPU run of the decode-step attention kernels' own source (kernels/attention_decode_kernel.cuh) under
// tests/emu/emu_rt.h, launched as kernels/attention_decode.cu launches them (grid (clips, heads), ATT_WARPS warps,
// the same dynamic shared-memory sizes), against host/ref/ref_ops.c ref_attend: the cases of
// tests/test_cuda_attention.c at emulation-friendly sizes. Self-attention: KV cache with a random ancestor table,
// clips with random live counts (some 0), steps past 32 (several keys per lane) and odd head sizes; also checks
// the step's k | v stored at cache[step][r] and anc[r][step] = r for live rows only. Cross-attention: packed
// per-clip memory, odd lengths, key masks, lengths past 32. Outputs start as NaN: rows that must not be written
// stay NaN, rows that must be written and aren't fail. Errors are max |emu - ref| / max |ref| as a share of
// TOL_GPU_ATTN_REL. The chained steps run twice: through the decoder's cache indirection and through its
// alternative, the cache gathered after each step (kernels/kv_cache_gather_kernel.cuh). Not a GPU test: it checks the code against CUDA's documented semantics only.
#include "emu_rt.h"

extern "C" {
#include "../../host/ref/ref_ops.h"
// ref_ops.c's encoder GEMM calls OpenBLAS; nothing here uses it
void cblas_sgemm() { abort(); }
}
#include "../tolerances.h"

#include "../../kernels/attention_decode_kernel.cuh"

extern "C" {
#include "../../host/model.h"  // AC_MAX_BEAM, for the beam kernels' header
}
#include "../../kernels/beam_search_kernel.cuh"  // gather_rows_kernel: the decoder's cache indirection
#include "../../kernels/kv_cache_gather_kernel.cuh"  // its alternative: the cache itself follows the rows

#include "emu_check.h"

static int make_rows(int n_clips, int K, int *row_off, int *n_live, int *row_clip) {
    int r = 0;
    for (int c = 0; c < n_clips; c++) {
        n_live[c] = irand(5) == 0 ? 0 : 1 + irand(K);
        row_off[c] = r;
        for (int j = 0; j < n_live[c]; j++) row_clip[r + j] = c;
        r += n_live[c];
    }
    return r;
}

// ac_gpu_attention_self's launch
static void launch_self(const float *qkv, float *cache, int *anc, int step, int max_steps, const int *row_off,
                        const int *n_live, int n_clips, int max_rows, int D, int nhead, float *out) {
    const int hd = D / nhead;
    const size_t smem = sizeof(float) * ATT_WARPS * (size_t)max_steps;
    emu_launch({(unsigned)n_clips, (unsigned)nhead, 1}, {ATT_WARPS * 32, 1, 1}, smem, [&] {
        attention_self_kernel(qkv, cache, anc, step, max_steps, row_off, n_live, max_rows, D, hd,
                              1.0f / sqrtf((float)hd), out);
    });
}

// ac_gpu_attention_cross's launch
static void launch_cross(const float *q, const float *mem_kv, const int *mem_off, const int *mem_len, int max_mem_len,
                         const int *row_off, const int *n_live, int n_clips, int D, int nhead, float *out) {
    const int hd = D / nhead;
    const size_t smem = sizeof(float) * ((size_t)2 * max_mem_len * (hd + 1) + (size_t)ATT_WARPS * max_mem_len);
    emu_launch({(unsigned)n_clips, (unsigned)nhead, 1}, {ATT_WARPS * 32, 1, 1}, smem, [&] {
        attention_cross_kernel(q, mem_kv, mem_off, mem_len, max_mem_len, row_off, n_live, D, hd,
                               1.0f / sqrtf((float)hd), out);
    });
}

static void test_self(int n_clips, int K, int D, int H, int step, int max_steps) {
    const int max_rows = n_clips * K;
    std::vector<int> row_off(n_clips), n_live(n_clips), row_clip(max_rows), written(max_rows, 0);
    const int rows = make_rows(n_clips, K, row_off.data(), n_live.data(), row_clip.data());
    for (int r = 0; r < rows; r++) written[r] = 1;
    std::vector<float> qkv((size_t)max_rows * 3 * D), cache((size_t)max_steps * max_rows * 2 * D);
    std::vector<int> anc((size_t)max_rows * max_steps);
    for (auto &v : qkv) v = frand();
    for (auto &v : cache) v = frand();
    for (auto &v : anc) v = irand(max_rows);
    std::vector<float> ref((size_t)max_rows * D, 0.0f), k((size_t)(step + 1) * D), v((size_t)(step + 1) * D);
    for (int r = 0; r < rows; r++) {
        for (int t = 0; t <= step; t++) {
            const float *src = t == step ? &qkv[(size_t)r * 3 * D + D]
                                         : &cache[((size_t)t * max_rows + anc[(size_t)r * max_steps + t]) * 2 * D];
            memcpy(&k[(size_t)t * D], src, sizeof(float) * D);
            memcpy(&v[(size_t)t * D], src + D, sizeof(float) * D);
        }
        ref_attend(&qkv[(size_t)r * 3 * D], k.data(), v.data(), step + 1, step + 1, D, H, &ref[(size_t)r * D]);
    }
    std::vector<float> d_cache = cache, out((size_t)max_rows * D, NAN);
    std::vector<int> d_anc = anc;
    launch_self(qkv.data(), d_cache.data(), d_anc.data(), step, max_steps, row_off.data(), n_live.data(), n_clips,
                max_rows, D, H, out.data());
    char what[128];
    snprintf(what, sizeof what, "self-attention clips %d beam %d D %d heads %d step %d of %d", n_clips, K, D, H, step,
             max_steps);
    compare_rows(what, 0, ref.data(), out.data(), written.data(), max_rows, D, TOL_GPU_ATTN_REL);
    int bad = 0;
    for (int r = 0; r < max_rows; r++) {
        const float *want = written[r] ? &qkv[(size_t)r * 3 * D + D] : &cache[((size_t)step * max_rows + r) * 2 * D];
        if (memcmp(&d_cache[((size_t)step * max_rows + r) * 2 * D], want, sizeof(float) * 2 * D)) bad++;
        if (d_anc[(size_t)r * max_steps + step] != (written[r] ? r : anc[(size_t)r * max_steps + step])) bad++;
    }
    for (int t = 0; t < max_steps; t++)  // nothing else in the cache or the ancestor table changes
        for (int r = 0; r < max_rows; r++) {
            if (t == step) continue;
            if (memcmp(&d_cache[((size_t)t * max_rows + r) * 2 * D], &cache[((size_t)t * max_rows + r) * 2 * D],
                       sizeof(float) * 2 * D))
                bad++;
            if (d_anc[(size_t)r * max_steps + t] != anc[(size_t)r * max_steps + t]) bad++;
        }
    EXPECT(!bad, "%s: %d wrong cache entries or ancestors", what, bad);
}

static void test_cross(int n_clips, int K, int D, int H, int max_frames, int slack = 0) {
    const int max_rows = n_clips * K;
    std::vector<int> row_off(n_clips), n_live(n_clips), row_clip(max_rows), written(max_rows, 0);
    std::vector<int> nf(n_clips), ml(n_clips), off(n_clips);
    const int rows = make_rows(n_clips, K, row_off.data(), n_live.data(), row_clip.data());
    for (int r = 0; r < rows; r++) written[r] = 1;
    int total = 0, max_len = 1;
    for (int c = 0; c < n_clips; c++) {
        nf[c] = 1 + irand(max_frames);
        ml[c] = irand(3) == 0 ? nf[c] : 1 + irand(nf[c]);
        off[c] = total;
        total += nf[c];
        if (ml[c] > max_len) max_len = ml[c];
    }
    std::vector<float> q((size_t)max_rows * D), kv((size_t)total * 2 * D);
    for (auto &x : q) x = 2 * frand();
    for (auto &x : kv) x = 2 * frand();
    std::vector<float> ref((size_t)max_rows * D, 0.0f), k((size_t)max_frames * D), v((size_t)max_frames * D);
    for (int r = 0; r < rows; r++) {
        const int c = row_clip[r];
        for (int f = 0; f < nf[c]; f++) {
            memcpy(&k[(size_t)f * D], &kv[((size_t)off[c] + f) * 2 * D], sizeof(float) * D);
            memcpy(&v[(size_t)f * D], &kv[((size_t)off[c] + f) * 2 * D + D], sizeof(float) * D);
        }
        ref_attend(&q[(size_t)r * D], k.data(), v.data(), nf[c], ml[c], D, H, &ref[(size_t)r * D]);
    }
    std::vector<float> out((size_t)max_rows * D, NAN);
    launch_cross(q.data(), kv.data(), off.data(), ml.data(), max_len + slack, row_off.data(), n_live.data(), n_clips, D, H,
                 out.data());
    char what[128];
    snprintf(what, sizeof what, "cross-attention clips %d beam %d D %d heads %d frames <= %d", n_clips, K, D, H,
             max_frames);
    compare_rows(what, 1, ref.data(), out.data(), written.data(), max_rows, D, TOL_GPU_ATTN_REL);
}

// Several decode steps as kernels/gpu_decoder.cu enqueue_step chains them for one layer: self-attention on the
// step's rows (writing cache[step] and anc[.][step]), then the beam's reorder applied to the ancestor table with
// ac_gpu_gather_rows(anc[cur] -> anc[1 - cur], n_cols = step + 1). Rows move between steps (random survivors of
// each clip, duplicated, dropped, clips finishing), and the reference keeps every row's full k | v history
// explicitly, reordered like the host decoder's caches (ac_decoder_reorder): the attention at each step must see
// exactly its row's own history. gather: the alternative bench_gpu_kv_reorder times, the cache itself reordered
// after each step (kv_cache_gather_kernel into a second buffer, swapped) under an identity ancestor table.
static void test_self_chain(int n_clips, int K, int D, int H, int maxT, bool gather = false) {
    const int R = n_clips * K;
    std::vector<float> caches[2] = {std::vector<float>((size_t)maxT * R * 2 * D, NAN),
                                    std::vector<float>((size_t)maxT * R * 2 * D, NAN)};
    int cc = 0;  // the cache in use (gather)
    emu_buf<int> anc[2] = {emu_buf<int>((size_t)R * maxT), emu_buf<int>((size_t)R * maxT)};
    if (gather)
        for (int r = 0; r < R; r++)
            for (int t = 0; t < maxT; t++) anc[0][(size_t)r * maxT + t] = r;
    emu_buf<int> src_row(R), n_rows(1);
    std::vector<int> n_live(n_clips, 1), row_off(n_clips), row_clip(R);
    std::vector<std::vector<float>> hist(R);  // per row: (t, 2D) k | v of positions 0..t-1
    int cur = 0, rows = n_clips;
    for (int c = 0; c < n_clips; c++) row_off[c] = c, row_clip[c] = c;
    for (int i = 0; i < maxT && rows > 0; i++) {
        std::vector<float> qkv((size_t)R * 3 * D, NAN), out((size_t)R * D, NAN), ref((size_t)R * D, 0.0f);
        std::vector<int> written(R, 0);
        for (size_t e = 0; e < (size_t)rows * 3 * D; e++) qkv[e] = frand();
        launch_self(qkv.data(), caches[cc].data(), anc[cur].p(), i, maxT, row_off.data(), n_live.data(), n_clips, R, D, H,
                    out.data());
        std::vector<float> k((size_t)(i + 1) * D), v((size_t)(i + 1) * D);
        for (int r = 0; r < rows; r++) {
            written[r] = 1;
            hist[r].insert(hist[r].end(), &qkv[(size_t)r * 3 * D + D], &qkv[(size_t)r * 3 * D + 3 * D]);
            for (int t = 0; t <= i; t++) {
                memcpy(&k[(size_t)t * D], &hist[r][(size_t)t * 2 * D], sizeof(float) * D);
                memcpy(&v[(size_t)t * D], &hist[r][(size_t)t * 2 * D + D], sizeof(float) * D);
            }
            ref_attend(&qkv[(size_t)r * 3 * D], k.data(), v.data(), i + 1, i + 1, D, H, &ref[(size_t)r * D]);
        }
        char what[128];
        snprintf(what, sizeof what, "self-attention chain%s clips %d beam %d D %d heads %d step %d (%d rows)",
                 gather ? " (gathered cache)" : "", n_clips, K, D, H, i, rows);
        compare_rows(what, 0, ref.data(), out.data(), written.data(), R, D, TOL_GPU_ATTN_REL);
        if (i + 1 >= maxT) break;
        // the beam's next rows: per clip 0..K survivors, each continuing a random row of the same clip
        std::vector<std::vector<float>> nh;
        std::vector<int> nl(n_clips), no(n_clips), nclip;
        int r2 = 0;
        for (int c = 0; c < n_clips; c++) {
            nl[c] = n_live[c] == 0 || (c > 0 && irand(12) == 0) ? 0 : 1 + irand(K);  // clip 0 lives on
            no[c] = r2;
            for (int j = 0; j < nl[c]; j++, r2++) {
                const int src = row_off[c] + irand(n_live[c]);
                src_row[r2] = src;
                nh.push_back(hist[src]);
                nclip.push_back(c);
            }
        }
        n_rows[0] = r2;
        if (gather) {  // positions 0..i of every row follow it; rows past r2 are left as they were
            const int W = 2 * D;
            emu_launch({(unsigned)R, (unsigned)(i + 1), 1}, {128, 1, 1}, 0, [&] {
                if (W % 4 == 0)
                    kv_cache_gather_kernel<true>(caches[cc].data(), caches[1 - cc].data(), (int64_t)maxT * R * W, R,
                                                 W, src_row.p(), n_rows.p());
                else
                    kv_cache_gather_kernel<false>(caches[cc].data(), caches[1 - cc].data(), (int64_t)maxT * R * W, R,
                                                  W, src_row.p(), n_rows.p());
            });
            cc = 1 - cc;
        } else {
            emu_launch({(unsigned)R, 1, 1}, {64, 1, 1}, 0, [&] {
                gather_rows_kernel(anc[cur].p(), anc[1 - cur].p(), maxT, i + 1, src_row.p(), nullptr, n_rows.p());
            });
            cur = 1 - cur;
        }
        hist.assign(R, std::vector<float>());
        for (int r = 0; r < r2; r++) hist[r] = nh[r], row_clip[r] = nclip[r];
        n_live = nl, row_off = no, rows = r2;
    }
}

int main() {
    test_self_chain(3, 3, 32, 2, 8);
    test_self_chain(5, 4, 48, 3, 37);  // past 32 keys
    test_self_chain(1, 16, 16, 1, 6);
    test_self_chain(3, 3, 32, 2, 8, true);  // the cache gathered instead of the indirection
    test_self_chain(5, 4, 48, 3, 37, true);
    test_self_chain(2, 3, 6, 2, 5, true);  // width 12: float4 copies; 2 D = 6 below: scalar ones
    test_self_chain(2, 3, 3, 1, 5, true);
    const int dh[][2] = {{64, 2}, {48, 3}, {40, 1}, {96, 6}, {256, 8}};
    for (size_t i = 0; i < sizeof dh / sizeof dh[0]; i++) {
        const int D = dh[i][0], H = dh[i][1];
        for (int step = 0; step < 22; step += 5 + (int)i) test_self(1 + irand(4), 1 + irand(4), D, H, step, 22);
        test_self(2, 3, D, H, 40, 41);  // more keys than lanes, cache full
        for (int f = 1; f <= 100; f = f * 3 + 1) test_cross(1 + irand(5), 1 + irand(4), D, H, f);
    }
    test_self(9, 3, 32, 4, 5, 6);  // more rows of a clip than warps: a warp loops
    test_self(2, 9, 32, 4, 3, 8);
    test_cross(3, 9, 32, 2, 40);
    test_cross(4, 3, 48, 3, 20, 7);  // the host bound max_mem_len above every clip's length
    printf("attention_decode_emu: %d checks, %d failed; worst self %.1f %%, cross %.1f %% of TOL_GPU_ATTN_REL\n",
           g_checks, g_fail, 100 * g_worst[0], 100 * g_worst[1]);
    return g_fail ? 1 : 0;
}
