// audiocap caption: caption audio files, directories, lists and dataset manifests with a model file.
// A pool of decode threads (host/pipeline.c) decodes and resamples ahead; the main thread cuts each file into
// clips (the first 30 s, or timed segments with --segment), captions them --batch-size at a time (results do not
// depend on the batch), and writes one row per clip in input order, each row one write(2), so that a killed run
// resumes exactly (--resume). A bad input is an error row and the run goes on. Exit codes: 2 usage, 1 systemic
// (model unreadable, output not writable, out of memory even at batch size 1), else 0.
#include "cli.h"
#include "cli_output.h"
#include "gpu_api.h"
#include "../kernels/device.h"
#include "ac.h"
#include "inputs.h"
#include "model.h"
#include "npy.h"
#include "pipeline.h"
#include "status.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLIP_SECONDS 30.0  // the models were trained on clips of at most 30 s (conette README, Limitations)
#define MIN_TAIL_SECONDS 1.0   // --segment: a last sliver shorter than this joins the window before it
#define CHECK_RATE 32000       // --check without a model resamples to CoNeTTE's rate
#define AC_MAX_DEVICES 16
#define CPU_BATCH 8     // clips per batch on the CPU: enough rows per GEMM, and a batch ends soon
#define GPU_BATCH 256   // on a GPU: the best batch of bench_gpu_caption on the H200 (bench/RESULTS.md)
#define GPU_WORKERS 2   // per GPU: one stages PCM and reads results back while the other's kernels run

enum { F_JSONL, F_CSV, F_WAVCAPS, F_SRT, F_VTT };
static const char *const FORMAT_NAMES[] = {"jsonl", "csv", "wavcaps", "srt", "vtt"};
static const char *const FORMAT_EXT[] = {"jsonl", "csv", "json", "srt", "vtt"};
enum { PF_TXT = 1, PF_JSON = 2, PF_SRT = 4, PF_VTT = 8 };

static void usage_caption(FILE *f) {
    fprintf(f,
            "usage: audiocap caption --model FILE [options] INPUT...\n\n"
            "Captions each INPUT (any format `audiocap features` reads; a directory means every audio file below it,\n"
            "sorted) with the model in FILE (a .safetensors model file: tools/fetch-model or tools/convert.py). Clips\n"
            "longer than %.0f s are captioned on their first %.0f s and the row says so (truncated_s), unless\n"
            "--segment cuts them into timed segments.\n\n"
            "options:\n"
            "  -m, --model FILE     model file                                                  [required]\n"
            "  --task NAME          task token (CoNeTTE: clotho, audiocaps, macs, wavcaps_*)     [model default: clotho]\n"
            "  --beam N             beam size                                                   [model default: 3]\n"
            "  --min-len N          minimum tokens before <eos> may be chosen                   [model default: 3]\n"
            "  --max-len N          maximum tokens                                              [model default: 20]\n"
            "  --nbest              add every beam (caption, score, tokens) to the JSON row     [off]\n"
            "  --segment SECONDS    caption long files as timed segments of SECONDS (1..30): one row per segment\n"
            "                       with segment, n_segments, start_s, end_s                    [off]\n"
            "  --hop SECONDS        start a segment every SECONDS (<= --segment: overlap)       [= --segment]\n"
            "  --format FMT         jsonl: one JSON row per clip; csv: the DCASE submission file_name,caption_predicted\n"
            "                       (file_name,start_s,end_s,caption_predicted with --segment; RFC 4180 quoting);\n"
            "                       wavcaps: a WavCaps-style JSON {\"num_captions_per_audio\":1,\"data\":[...]};\n"
            "                       srt|vtt: subtitles of one input. Failed inputs go to stderr except in jsonl [jsonl]\n"
            "  -o, --output PATH    write to PATH; each row is one write, so a killed run never leaves half a row\n"
            "                       except at the very end (--resume cuts it). A PATH ending in '/' or naming a\n"
            "                       folder gets part-0000I-of-0000N.<ext> (the shard) and, when the run completes,\n"
            "                       part-0000I-of-0000N.<ext>.done (a JSON summary)               [stdout]\n"
            "  --output-dir DIR     also write per-input files DIR/<id>.<ext> for each --per-file format    [off]\n"
            "  --per-file LIST      per-input formats, comma-separated: txt, json, srt, vtt     [txt,json]\n"
            "  --list FILE          also caption the paths listed in FILE, one per line (- = stdin) [none]\n"
            "  --manifest FILE      also caption the files a dataset manifest names: Clotho CSV (file_name,...),\n"
            "                       AudioCaps CSV (audiocap_id,youtube_id,start_time,...), WavCaps JSON, NeMo\n"
            "                       JSONL (audio_filepath)                                      [none]\n"
            "  --audio-dir DIR      folder the manifest's names are relative to               [the manifest's folder]\n"
            "  --resume             skip inputs whose id already has its rows in the output (jsonl); append  [off]\n"
            "  --shard I/N          caption inputs I, I+N, I+2N, ... of the whole ordered set (0 <= I < N);\n"
            "                       defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when both are set  [all]\n"
            "  --batch-size N       clips captioned together (halved and retried when memory runs out)\n"
            "                                                                                 [cpu: 8, cuda: 256]\n"
            "  --threads N          CPU threads in all, shared out among the CPU workers        [all cores]\n"
            "  --workers N          CPU workers, each captioning its own batches with --threads/N threads;\n"
            "                       0: one single-threaded worker per thread when there are enough batches to\n"
            "                       go round (fastest for many files), fewer, multi-threaded ones otherwise.\n"
            "                       With cuda: workers per GPU, each with its own stream and buffers, so that\n"
            "                       one stages audio while another computes (0: 2, or 1 for a single batch) [0]\n"
            "  --decode-threads N   threads decoding and resampling ahead of the model (0: decode in the main\n"
            "                       thread, best beside a multi-threaded CPU model)\n"
            "                                  [cpu: 0; cuda: every core but one per GPU worker; --check: every core]\n"
            "  --device LIST        where the model runs: cpu, cuda (every GPU) or cuda:0,1,...; --workers\n"
            "                       per listed GPU (cpu listed k times: --workers k), batches shared out,\n"
            "                       rows still in input order                                 [cpu]\n"
            "  --precision P        fp32 (CPU; the GPU's validation mode) or bf16 (GPU tensor cores)  [cpu: fp32, cuda: bf16]\n"
            "  --dump-dir DIR       write DIR/<id>/<stage>.npy for every stage (audio_32k, logmel, bn0, stem,\n"
            "                       stage0..3, frame_embs, projection), for comparison with the reference  [off]\n"
            "  --progress SECONDS   progress on stderr: a bar when stderr is a terminal, else a JSON line\n"
            "                       {\"progress\":{...}} every SECONDS (0: none)                  [10]\n"
            "  --check              decode and resample every input, write its row (status, error, duration_s)\n"
            "                       and no caption: finds the bad files of an archive fast; --model optional  [off]\n"
            "  -q, --quiet          no progress, warnings or summary on stderr                  [off]\n"
            "  -h, --help           this help\n\n"
            "JSON row fields: id, path, status (ok|error), error, caption, score (average log-prob of the chosen\n"
            "beam, <eos> included), tokens (generated ids), duration_s, truncated_s (when truncated), segment,\n"
            "n_segments, start_s, end_s (with --segment), task, beam_size, min_pred_size, max_pred_size, model,\n"
            "model_sha256 (of FILE), engine, device, precision, and with --nbest: best (index) and beams.\n",
            MAX_CLIP_SECONDS, MAX_CLIP_SECONDS);
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end || x < lo || x > hi) {
        fprintf(stderr, "audiocap caption: %s wants an integer in %d..%d, got '%s'\n", opt, lo, hi, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_seconds(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (*v == '\0' || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "audiocap caption: %s wants seconds in %g..%g, got '%s'\n", opt, lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// SHA-256 of a file as 64 hex digits (every row names the exact model that wrote it)
static int sha256_file(const char *path, char hex[65]);
// ... computed in a thread while the model loads (170 MB: ~0.17 s of hashing beside ~0.12 s of loading here)
typedef struct {
    const char *path;
    char *hex;
    int ok, err;
} sha_job;
static void *sha_thread(void *arg) {
    sha_job *j = arg;
    j->ok = sha256_file(j->path, j->hex);
    j->err = errno;
    return NULL;
}

static int sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = f && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    static unsigned char buf[1 << 20];
    for (size_t n; ok && (n = fread(buf, 1, sizeof buf, f)) > 0;) ok = EVP_DigestUpdate(ctx, buf, n) == 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &len) == 1;
    for (unsigned i = 0; ok && i < len; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (f) fclose(f);
    EVP_MD_CTX_free(ctx);
    return ok;
}

static cJSON *ids_json(const int *t, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(t[i]));
    return a;
}

// ---- the run ---------------------------------------------------------------------------------------------------
typedef struct {
    const char *path, *id;
    ac_decoded d;
    double truncated_s;
    int n_entries, n_written, n_ok;
    cJSON *rows;  // --output-dir: the file's rows, written out when its last one is in
} item;

static void item_free(item *it) {
    free(it->d.x);
    cJSON_Delete(it->rows);
    free(it);
}

typedef struct {
    item *it;
    int seg, n_seg;  // n_seg 0: not segmented
    int64_t off, n;  // samples of it->d.x
} entry;

typedef struct {
    // options
    const ac_model *m;
    const ac_model_config *cfg;
    ac_decode_params params;
    int eff_beam, eff_min, eff_max, nbest, format, segmented, quiet, per_file;
    double seg_s, hop_s, progress_s;
    const char *task_name, *dump_dir, *out_dir;
    char model_sha[65];
    int sr;     // model sample rate
    int threads;  // --threads (0: all cores)
    const char *device_kind;  // "cpu" or "cuda"
    ac_precision precision;
    int check;  // --check: decode only, no model
    int batch;  // current batch size (halved on out-of-memory)
    int fault_nomem_above;  // test hook: AC_FAULT_NOMEM_ABOVE=N fails captioning of more than N clips at once
    // output
    int out;
    int wavcaps_rows;
    // pending clips, in input order
    entry *pend;
    int n_pend, cap_pend;
    // tallies
    int n_files, files_done, files_ok, files_err, n_skipped, clips_ok, clips_err;
    double audio_s, t0, last_progress;
    int tty;
} run;

// The model behind one worker: the CPU engine (every worker may share one ac_model: it is read-only once loaded).
typedef struct {
    const run *r;
    const ac_model *m;  // CPU workers
    ac_gpu_model *g;    // GPU workers: the model on this worker's device
    int device;         // GPU workers: that device's number
    int failed;         // its device has failed (said once)
} engine;

static ac_status caption_engine(const engine *eng, int n, const float *const *x, const int64_t *ns, ac_caption *caps) {
    const run *r = eng->r;
    if (r->fault_nomem_above > 0 && n > r->fault_nomem_above)
        return ac_fail(AC_ERR_NOMEM, "caption: simulated out of memory at %d clips (AC_FAULT_NOMEM_ABOVE)", n);
    if (eng->g) return ac_gpu_caption_clips(eng->g, n, x, ns, &r->params, caps);
    return ac_caption_clips(eng->m, n, x, ns, &r->params, caps);
}

// A batch of pending clips (and the error rows between them), captioned by a worker, written by the main thread.
typedef struct {
    entry *ents;
    int n_ents, n_cap;
    const float **xs;
    int64_t *ns;
    ac_caption *caps;
    char error[1024];  // why the worker failed (ac_last_error is per thread)
} job;

static void job_free(job *j) {
    if (!j) return;
    free(j->ents);
    free(j->xs);
    free(j->ns);
    free(j->caps);
    free(j);
}

// Captions a job's clips, halving the batch size (for the rest of the run: r->batch, shared by the workers)
// whenever memory runs out (a GPU at a batch too large for its memory); out of memory for one clip is systemic.
static ac_status run_job(void *ctx, void *arg) {
    engine *eng = ctx;
    run *r = (run *)eng->r;
    job *j = arg;
    static _Thread_local int threads_set;
    if (!threads_set) {  // OpenMP's thread count is per thread: workers take --threads too
        cli_set_threads(r->threads);
        threads_set = 1;
    }
    for (int done = 0; done < j->n_cap;) {
        int cap = __atomic_load_n(&r->batch, __ATOMIC_RELAXED);
        int k = j->n_cap - done < cap ? j->n_cap - done : cap;
        ac_status st = caption_engine(eng, k, j->xs + done, j->ns + done, j->caps + done);
        if (st == AC_ERR_NOMEM && k > 1) {
            int half = k / 2, cur = cap;
            while (half < cur && !__atomic_compare_exchange_n(&r->batch, &cur, half, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            }
            if (!r->quiet)
                fprintf(stderr, "audiocap caption: out of memory at %d clips (%s): batch size now %d\n", k,
                        ac_last_error(), half);
            continue;
        }
        if (st) {
            snprintf(j->error, sizeof j->error, "%s", ac_last_error());
            // a device failure: the job pool stops this worker and hands the job to another one, if one is left
            if (st == AC_ERR_CUDA && eng->g && !eng->failed++)
                fprintf(stderr, "audiocap caption: cuda:%d failed: %s\n", eng->device, j->error);
            return st;
        }
        done += k;
    }
    return AC_OK;
}

static char *row_line(cJSON *row) {
    char *js = cJSON_PrintUnformatted(row);
    char *line = js ? malloc(strlen(js) + 2) : NULL;
    if (line) sprintf(line, "%s\n", js);
    free(js);
    return line;
}

static void safe_name(const char *id, char *out, size_t cap) {
    snprintf(out, cap, "%s", id);
    for (char *p = out; *p; p++)
        if (*p == '/') *p = '_';
}

// --output-dir: DIR/<id>.txt|.json|.srt|.vtt once every row of the file is known
static int write_per_file(run *r, item *it) {
    char name[2048], path[8192];
    safe_name(it->id, name, sizeof name);
    int bad = 0;
    for (int k = 0; k < 4 && !bad; k++) {
        const int flag = 1 << k;
        static const char *const ext[] = {"txt", "json", "srt", "vtt"};
        if (!(r->per_file & flag)) continue;
        if (flag != PF_JSON && it->n_ok == 0) continue;  // nothing to say but the error, which the .json holds
        char *buf = NULL;
        size_t len = 0;
        FILE *ms = open_memstream(&buf, &len);
        if (!ms) return 1;
        if (flag == PF_JSON) {
            cJSON *doc = r->segmented ? cJSON_CreateObject() : cJSON_Duplicate(cJSON_GetArrayItem(it->rows, 0), 1);
            if (r->segmented) {
                cJSON_AddStringToObject(doc, "id", it->id);
                cJSON_AddStringToObject(doc, "path", it->path);
                if (it->d.duration_s > 0) cJSON_AddNumberToObject(doc, "duration_s", it->d.duration_s);
                cJSON_AddItemToObject(doc, "segments", cJSON_Duplicate(it->rows, 1));
            }
            char *js = cJSON_Print(doc);
            cJSON_Delete(doc);
            if (js) fprintf(ms, "%s\n", js);
            else bad = 1;
            free(js);
        } else {
            if (flag == PF_VTT) fputs("WEBVTT\n\n", ms);
            int cue = 0;
            const cJSON *row;
            cJSON_ArrayForEach(row, it->rows) {
                const cJSON *cap = cJSON_GetObjectItemCaseSensitive(row, "caption");
                if (!cJSON_IsString(cap)) continue;
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, "start_s");
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(row, "end_s");
                double t0 = cJSON_IsNumber(s) ? s->valuedouble : 0;
                double t1 = cJSON_IsNumber(e) ? e->valuedouble
                                              : fmin(it->d.duration_s, MAX_CLIP_SECONDS);
                if (flag == PF_TXT) {
                    if (r->segmented) {
                        fputc('[', ms);
                        out_timestamp(ms, t0, '.');
                        fputs(" --> ", ms);
                        out_timestamp(ms, t1, '.');
                        fputs("] ", ms);
                    }
                    fprintf(ms, "%s\n", cap->valuestring);
                } else {
                    out_cue(ms, flag == PF_VTT, ++cue, t0, t1, cap->valuestring);
                }
            }
        }
        fclose(ms);
        snprintf(path, sizeof path, "%s/%s.%s", r->out_dir, name, ext[k]);
        if (!bad && out_write_atomic(path, buf, len)) {
            fprintf(stderr, "audiocap caption: cannot write %s: %s\n", path, strerror(errno));
            bad = 1;
        }
        free(buf);
    }
    return bad;
}

static void progress(run *r, int final) {
    if (r->quiet || r->progress_s <= 0) return;
    double t = now_s();
    if (!final && t - r->last_progress < (r->tty ? 0.5 : r->progress_s)) return;
    r->last_progress = t;
    double el = t - r->t0, rate = el > 0 ? r->files_done / el : 0;
    double eta = rate > 0 ? (r->n_files - r->files_done) / rate : -1;
    if (r->tty) {
        int w = 30, fill = r->n_files ? (int)((double)w * r->files_done / r->n_files) : w;
        char bar[64];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        fprintf(stderr, "\r[%s] %d/%d files, %d failed, %.2f h audio, %.1f clips/s, ETA ", bar, r->files_done,
                r->n_files, r->files_err, r->audio_s / 3600, el > 0 ? r->clips_ok / el : 0.0);
        if (eta >= 0) fprintf(stderr, "%d:%02d:%02d ", (int)(eta / 3600), (int)(eta / 60) % 60, (int)eta % 60);
        else fputs("-      ", stderr);
        if (final) fputc('\n', stderr);
    } else if (!final) {
        fprintf(stderr, "{\"progress\":{\"files_done\":%d,\"files_total\":%d,\"ok\":%d,\"failed\":%d,\"clips\":%d,"
                "\"audio_h\":%.4f,\"elapsed_s\":%.1f,\"files_per_s\":%.3f,\"clips_per_s\":%.3f,\"eta_s\":%.0f}}\n",
                r->files_done, r->n_files, r->files_ok, r->files_err, r->clips_ok, r->audio_s / 3600, el, rate,
                el > 0 ? r->clips_ok / el : 0.0, eta);
    }
}

// Writes the row of one clip (cp: its caption, NULL when the file failed before captioning).
static int write_entry(run *r, const entry *e, const ac_caption *cp) {
    item *it = e->it;
    const ac_hyp *best = NULL;
    char err[1200];
    if (it->d.st) snprintf(err, sizeof err, "%s", it->d.error);
    else if (cp && cp->status) snprintf(err, sizeof err, "%s: %s", it->path, cp->error);
    else if (cp) best = &cp->beams[cp->best];
    const int ok = best || (r->check && !it->d.st);
    const double start_s = (double)e->off / r->sr;
    const double end_s = (double)(e->off + e->n) / r->sr;
    ok ? r->clips_ok++ : r->clips_err++;
    if (ok) it->n_ok++;

    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "id", it->id);
    cJSON_AddStringToObject(row, "path", it->path);
    if (e->n_seg) {
        cJSON_AddNumberToObject(row, "segment", e->seg);
        cJSON_AddNumberToObject(row, "n_segments", e->n_seg);
        cJSON_AddNumberToObject(row, "start_s", start_s);
        cJSON_AddNumberToObject(row, "end_s", end_s);
    }
    cJSON_AddStringToObject(row, "status", ok ? "ok" : "error");
    if (ok) cJSON_AddNullToObject(row, "error");
    else cJSON_AddStringToObject(row, "error", err);
    if (best) {
        cJSON_AddStringToObject(row, "caption", best->text);
        cJSON_AddNumberToObject(row, "score", best->score);
        cJSON_AddItemToObject(row, "tokens", ids_json(best->tokens, best->n_tokens));
    }
    if (it->d.duration_s > 0) cJSON_AddNumberToObject(row, "duration_s", it->d.duration_s);
    if (it->truncated_s > 0) cJSON_AddNumberToObject(row, "truncated_s", it->truncated_s);
    if (!r->check) {
        if (r->task_name) cJSON_AddStringToObject(row, "task", r->task_name);
        cJSON_AddNumberToObject(row, "beam_size", r->eff_beam);
        cJSON_AddNumberToObject(row, "min_pred_size", r->eff_min);
        cJSON_AddNumberToObject(row, "max_pred_size", r->eff_max);
        cJSON_AddStringToObject(row, "model", r->cfg->model_name);
        cJSON_AddStringToObject(row, "model_sha256", r->model_sha);
    }
    cJSON_AddStringToObject(row, "engine", "audiocap " AC_VERSION);
    if (!r->check) {
        cJSON_AddStringToObject(row, "device", r->device_kind);
        cJSON_AddStringToObject(row, "precision", r->precision == AC_PREC_BF16 ? "bf16" : "fp32");
    }
    if (best && r->nbest) {
        cJSON_AddNumberToObject(row, "best", cp->best);
        cJSON *arr = cJSON_AddArrayToObject(row, "beams");
        for (int b = 0; b < cp->n_beams; b++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "caption", cp->beams[b].text);
            cJSON_AddNumberToObject(o, "score", cp->beams[b].score);
            cJSON_AddItemToObject(o, "tokens", ids_json(cp->beams[b].tokens, cp->beams[b].n_tokens));
            cJSON_AddItemToArray(arr, o);
        }
    }

    int bad = 0;
    char *line = NULL;
    size_t len = 0;
    if (r->format == F_JSONL) {
        line = row_line(row);
        bad = !line;
    } else if (best) {
        FILE *ms = open_memstream(&line, &len);
        if (!ms) bad = 1;
        else if (r->format == F_CSV) {
            out_csv_field(ms, it->id);
            if (e->n_seg) fprintf(ms, ",%.3f,%.3f", start_s, end_s);
            fputc(',', ms);
            out_csv_field(ms, best->text);
            fputc('\n', ms);
        } else if (r->format == F_WAVCAPS) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", it->id);
            cJSON_AddStringToObject(o, "caption", best->text);
            cJSON_AddStringToObject(o, "audio", it->path);
            cJSON_AddNumberToObject(o, "duration", it->d.duration_s);
            if (e->n_seg) {
                cJSON_AddNumberToObject(o, "start_s", start_s);
                cJSON_AddNumberToObject(o, "end_s", end_s);
            }
            char *js = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (js) fprintf(ms, "%s%s", r->wavcaps_rows++ ? ",\n" : "\n", js);
            else bad = 1;
            free(js);
        } else {  // srt / vtt
            out_cue(ms, r->format == F_VTT, r->clips_ok, start_s, e->n_seg ? end_s : fmin(it->d.duration_s, end_s),
                    best->text);
        }
        if (ms) fclose(ms);
    } else if (!ok && !r->quiet) {
        fprintf(stderr, "audiocap caption: %s\n", err);
    }
    if (line && !bad && out_emit(r->out, line)) {
        fprintf(stderr, "audiocap caption: cannot write output: %s\n", strerror(errno));
        bad = 1;
    }
    free(line);
    if (r->out_dir) cJSON_AddItemToArray(it->rows, row);
    else cJSON_Delete(row);

    if (++it->n_written == it->n_entries) {  // the file is complete
        if (r->out_dir && write_per_file(r, it)) bad = 1;
        if (it->n_ok == it->n_entries) {
            r->files_ok++;
            r->audio_s += it->d.duration_s;
        } else {
            r->files_err++;
        }
        r->files_done++;
        if (it->truncated_s > 0 && !r->quiet)
            fprintf(stderr, "%saudiocap caption: %s: %.1f s long, captioned on its first %.0f s (--segment "
                    "captions all of it)\n", r->tty ? "\r\033[K" : "", it->path, it->d.duration_s, MAX_CLIP_SECONDS);
        item_free(it);
        progress(r, 0);
    }
    return bad;
}

// Moves the pending clips up to and including the k-th one that has audio (and the error rows right behind)
// into a job. NULL when out of memory.
static job *make_job(run *r, int k) {
    int n_take = 0, n_cap = 0;
    while (n_take < r->n_pend && n_cap < k) {
        if (!r->pend[n_take].it->d.st) n_cap++;
        n_take++;
    }
    while (n_take < r->n_pend && r->pend[n_take].it->d.st) n_take++;
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->ents = malloc(sizeof(entry) * (size_t)(n_take + 1));
    j->xs = calloc((size_t)n_cap + 1, sizeof *j->xs);
    j->ns = calloc((size_t)n_cap + 1, sizeof *j->ns);
    j->caps = calloc((size_t)n_cap + 1, sizeof *j->caps);
    if (!j->ents || !j->xs || !j->ns || !j->caps) {
        job_free(j);
        return NULL;
    }
    memcpy(j->ents, r->pend, sizeof(entry) * (size_t)n_take);
    j->n_ents = n_take;
    for (int i = 0; i < n_take; i++) {
        const entry *e = &j->ents[i];
        if (e->it->d.st) continue;
        j->xs[j->n_cap] = e->it->d.x + e->off;
        j->ns[j->n_cap++] = e->n;
    }
    if (r->check) j->n_cap = 0;  // decode only: nothing for the model
    memmove(r->pend, r->pend + n_take, sizeof(entry) * (size_t)(r->n_pend - n_take));
    r->n_pend -= n_take;
    return j;
}

// Forgets clips that will not be written (after a failure), freeing each file with its last clip.
static void discard(entry *ents, int n) {
    for (int i = 0; i < n; i++) {
        item *it = ents[i].it;
        if (++it->n_written == it->n_entries) item_free(it);
    }
}

static int write_job(run *r, job *j) {
    for (int i = 0, c = 0; i < j->n_ents; i++) {
        const entry *e = &j->ents[i];
        const int has_audio = !e->it->d.st;  // write_entry frees the item with its last row
        if (write_entry(r, e, has_audio && !r->check ? &j->caps[c] : NULL)) {
            discard(j->ents + i + 1, j->n_ents - i - 1);
            return 1;
        }
        c += has_audio;
    }
    return 0;
}

// Takes finished jobs back in submission order and writes their rows. wait: 0 only those already finished,
// 1 at least one, 2 all. After a failure (rc != 0) the rest is taken back and discarded.
static int drain(run *r, ac_job_pool *pool, int wait, int rc) {
    for (int got = 0;; got++) {
        ac_status st = AC_OK;
        job *j = wait == 2 || (wait == 1 && got == 0) ? ac_job_pool_next(pool, &st) : ac_job_pool_try_next(pool, &st);
        if (!j) return rc;
        if (!rc && st) {
            fprintf(stderr, "audiocap caption: %s\n", j->error);
            rc = 1;
        }
        if (!rc) rc = write_job(r, j);
        else discard(j->ents, j->n_ents);
        job_free(j);
        if (rc) wait = 2;
    }
}

// Hands the pending clips up to the k-th with audio to the workers, writing finished jobs to make room.
static int submit(run *r, ac_job_pool *pool, int k, int max_inflight) {
    int rc = 0;
    if (ac_job_pool_inflight(pool) >= max_inflight) rc = drain(r, pool, 1, 0);
    if (rc) return rc;
    job *j = make_job(r, k);
    if (!j) {
        fprintf(stderr, "audiocap caption: out of memory\n");
        return 1;
    }
    ac_job_pool_submit(pool, j);
    return drain(r, pool, 0, 0);
}

static int n_captionable(const run *r) {
    int k = 0;
    for (int i = 0; i < r->n_pend; i++) k += !r->pend[i].it->d.st;
    return k;
}

static int push_entry(run *r, entry e) {
    if (r->n_pend == r->cap_pend) {
        int cap = r->cap_pend ? 2 * r->cap_pend : 64;
        entry *p = realloc(r->pend, sizeof(entry) * (size_t)cap);
        if (!p) return 1;
        r->pend = p;
        r->cap_pend = cap;
    }
    r->pend[r->n_pend++] = e;
    return 0;
}

// One decoded file -> its clips: the whole file (truncated to 30 s), or its segments.
static int add_item(run *r, const char *path, const char *id, ac_decoded *d) {
    item *it = calloc(1, sizeof *it);
    if (!it || (r->out_dir && !(it->rows = cJSON_CreateArray()))) {
        free(it);
        free(d->x);
        return 1;
    }
    it->path = path;
    it->id = id;
    it->d = *d;
    const int sr = r->sr;
    if (it->d.st) {
        it->n_entries = 1;
        return push_entry(r, (entry){it, 0, 0, 0, 0});
    }
    if (!r->segmented) {
        int64_t n = it->d.n, max_n = (int64_t)(MAX_CLIP_SECONDS * sr);
        if (n > max_n) {
            it->truncated_s = it->d.duration_s - MAX_CLIP_SECONDS;
            n = max_n;
        }
        it->n_entries = 1;
        return push_entry(r, (entry){it, 0, 0, 0, n});
    }
    const int cap = (int)(it->d.n / (int64_t)(r->hop_s * sr) + 2);
    int64_t *st = malloc(sizeof(int64_t) * (size_t)cap), *ln = malloc(sizeof(int64_t) * (size_t)cap);
    int k = st && ln ? ac_plan_segments(it->d.n, sr, r->seg_s, r->hop_s, MIN_TAIL_SECONDS, MAX_CLIP_SECONDS, st, ln, cap)
                     : -1;
    int bad = k <= 0;
    it->n_entries = k > 0 ? k : 0;
    for (int i = 0; i < k && !bad; i++) bad = push_entry(r, (entry){it, i, k, st[i], ln[i]});
    free(st);
    free(ln);
    return bad;
}

// --dump-dir: every stage of the clip as the encoder sees it
typedef struct {
    const char *dir;
    ac_status st;
} dump_ctx;

static void dump_stage(void *ctx, const char *stage, const float *data, int ndim, const int64_t *shape) {
    dump_ctx *d = ctx;
    if (d->st) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, stage);
    d->st = ac_npy_write_f32(path, data, ndim, shape);
}

static int dump_item(run *r, const char *id, const ac_decoded *d) {
    const int64_t n = d->n < (int64_t)(MAX_CLIP_SECONDS * r->sr) ? d->n : (int64_t)(MAX_CLIP_SECONDS * r->sr);
    char dir[4096];
    dump_ctx dc = {dir, cli_dump_dir(r->dump_dir, id, dir, sizeof dir)};
    if (!dc.st) dump_stage(&dc, "audio_32k", d->x, 1, &n);
    float *mem = NULL;
    int nf, ml;
    if (!dc.st) {
        ac_status es = ac_model_encode(r->m, d->x, n, dump_stage, &dc, &mem, &nf, &ml);
        free(mem);
        if (!dc.st) dc.st = es == AC_ERR_AUDIO ? AC_OK : es;  // too short: reported by its row
    }
    if (dc.st) fprintf(stderr, "audiocap caption: --dump-dir: %s\n", ac_last_error());
    return dc.st != AC_OK;
}

static int parse_per_file(const char *s, int *out) {
    *out = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "txt")) *out |= PF_TXT;
        else if (!strcmp(tok, "json")) *out |= PF_JSON;
        else if (!strcmp(tok, "srt")) *out |= PF_SRT;
        else if (!strcmp(tok, "vtt")) *out |= PF_VTT;
        else {
            fprintf(stderr, "audiocap caption: --per-file takes txt, json, srt, vtt; not '%s'\n", tok);
            return 0;
        }
    }
    return *out != 0;
}

int cli_caption(int argc, char **argv) {
    static struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"task", required_argument, 0, 'T'},
        {"beam", required_argument, 0, 'b'},     {"min-len", required_argument, 0, 'n'},
        {"max-len", required_argument, 0, 'x'},  {"nbest", no_argument, 0, 'N'},
        {"format", required_argument, 0, 'F'},   {"output", required_argument, 0, 'o'},
        {"batch-size", required_argument, 0, 'B'}, {"threads", required_argument, 0, 't'},
        {"dump-dir", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"list", required_argument, 0, 'L'},     {"resume", no_argument, 0, 'R'},
        {"shard", required_argument, 0, 'S'},    {"manifest", required_argument, 0, 'M'},
        {"audio-dir", required_argument, 0, 'A'}, {"segment", required_argument, 0, 'g'},
        {"hop", required_argument, 0, 'H'},      {"output-dir", required_argument, 0, 'O'},
        {"per-file", required_argument, 0, 'P'}, {"decode-threads", required_argument, 0, 'D'},
        {"progress", required_argument, 0, 'p'}, {"check", no_argument, 0, 'C'},
        {"device", required_argument, 0, 'V'},   {"workers", required_argument, 0, 'W'},
        {"precision", required_argument, 0, 'X'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *model_path = NULL, *task = NULL, *out_arg = NULL, *list = NULL, *shard = NULL;
    const char *manifest = NULL, *audio_dir = NULL, *per_file_arg = NULL, *device_arg = "cpu";
    int precision = -1;
    int resume = 0, beam = 0, min_len = -1, max_len = 0, c, threads = 0, decode_threads = -1, workers = 0, batch = 0;
    double hop = 0;
    run r = {.format = F_JSONL, .progress_s = 10, .out = STDOUT_FILENO};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'T': task = optarg; break;
        case 'b': if (!parse_int("--beam", optarg, 1, AC_MAX_BEAM, &beam)) return 2; break;
        case 'n': if (!parse_int("--min-len", optarg, 0, AC_MAX_PRED - 1, &min_len)) return 2; break;
        case 'x': if (!parse_int("--max-len", optarg, 1, AC_MAX_PRED - 1, &max_len)) return 2; break;
        case 'N': r.nbest = 1; break;
        case 'F': {
            int f = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(optarg, FORMAT_NAMES[i])) f = i;
            if (f < 0) {
                fprintf(stderr, "audiocap caption: --format is jsonl, csv, wavcaps, srt or vtt, not '%s'\n", optarg);
                return 2;
            }
            r.format = f;
            break;
        }
        case 'o': out_arg = optarg; break;
        case 'B': if (!parse_int("--batch-size", optarg, 1, 4096, &batch)) return 2; break;
        case 't': if (!parse_int("--threads", optarg, 1, 4096, &threads)) return 2; break;
        case 'D': if (!parse_int("--decode-threads", optarg, 0, 256, &decode_threads)) return 2; break;
        case 'W': if (!parse_int("--workers", optarg, 0, AC_MAX_DEVICES, &workers)) return 2; break;
        case 'd': r.dump_dir = optarg; break;
        case 'q': r.quiet = 1; break;
        case 'L': list = optarg; break;
        case 'R': resume = 1; break;
        case 'S': shard = optarg; break;
        case 'M': manifest = optarg; break;
        case 'A': audio_dir = optarg; break;
        case 'g': if (!parse_seconds("--segment", optarg, 1, MAX_CLIP_SECONDS, &r.seg_s)) return 2; r.segmented = 1; break;
        case 'H': if (!parse_seconds("--hop", optarg, 0.1, MAX_CLIP_SECONDS, &hop)) return 2; break;
        case 'O': r.out_dir = optarg; break;
        case 'P': per_file_arg = optarg; break;
        case 'p': if (!parse_seconds("--progress", optarg, 0, 1e6, &r.progress_s)) return 2; break;
        case 'C': r.check = 1; break;
        case 'V': device_arg = optarg; break;
        case 'X':
            if (!strcmp(optarg, "fp32")) precision = AC_PREC_FP32;
            else if (!strcmp(optarg, "bf16")) precision = AC_PREC_BF16;
            else {
                fprintf(stderr, "audiocap caption: --precision is fp32 or bf16, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage_caption(stdout); return 0;
        default: usage_caption(stderr); return 2;
        }
    }
    if ((!model_path && !r.check) || (optind >= argc && !list && !manifest)) {
        fprintf(stderr, "audiocap caption: %s\n\n", !model_path && !r.check ? "--model FILE is required" : "no INPUT given");
        usage_caption(stderr);
        return 2;
    }
    if (hop > 0 && (!r.segmented || hop > r.seg_s)) {
        fprintf(stderr, "audiocap caption: --hop needs --segment and must not exceed it\n");
        return 2;
    }
    r.hop_s = hop > 0 ? hop : r.seg_s;
    // --device: one worker per listed device. cpu (may be listed more than once: workers sharing the cores),
    // cuda (every visible GPU), cuda:0,1,... (a bare number continues the list)
    int n_workers = 0, devices[AC_MAX_DEVICES], n_gpus = -1, any_cpu = 0, any_gpu = 0;
    {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", device_arg);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            char *end = NULL;
            long dev = -2;
            if (!strcmp(tok, "cpu")) dev = -1;
            else if (!strncmp(tok, "cuda:", 5) || (any_gpu && *tok >= '0' && *tok <= '9')) {
                const char *num = tok[0] == 'c' ? tok + 5 : tok;
                dev = strtol(num, &end, 10);
                if (*num == '\0' || *end || dev < 0) dev = -2;
            } else if (!strcmp(tok, "cuda")) {
                if (ac_cuda_device_count(&n_gpus) != AC_OK) n_gpus = 0;
                for (int d = 0; d < n_gpus && n_workers < AC_MAX_DEVICES; d++) devices[n_workers++] = d;
                any_gpu = 1;
                if (n_gpus == 0) {
                    fprintf(stderr, "audiocap caption: --device cuda: no CUDA device is visible (%s)\n",
                            ac_cuda_compiled() ? "see audiocap devices" : "this audiocap was built without CUDA");
                    return 1;
                }
                continue;
            }
            if (dev == -2 || n_workers == AC_MAX_DEVICES) {
                fprintf(stderr, "audiocap caption: --device takes cpu, cuda or cuda:N[,M...], not '%s'\n", tok);
                return 2;
            }
            devices[n_workers++] = (int)dev;
            any_cpu |= dev < 0;
            any_gpu |= dev >= 0;
        }
        if (n_workers == 0 || (any_cpu && any_gpu)) {
            fprintf(stderr, "audiocap caption: --device lists %s\n", n_workers ? "both cpu and cuda devices" : "no device");
            return 2;
        }
    }
    if (precision < 0) precision = any_gpu ? AC_PREC_BF16 : AC_PREC_FP32;
    r.batch = batch ? batch : any_gpu ? GPU_BATCH : CPU_BATCH;
    if (any_cpu && precision != AC_PREC_FP32) {
        fprintf(stderr, "audiocap caption: the CPU engine computes in fp32 only (--precision bf16 is for cuda devices)\n");
        return 2;
    }
    r.device_kind = any_gpu ? "cuda" : "cpu";
    r.precision = (ac_precision)precision;
    if (r.check && (r.format != F_JSONL || r.dump_dir || r.nbest)) {
        fprintf(stderr, "audiocap caption: --check writes jsonl rows without captions (no --format, --dump-dir, --nbest)\n");
        return 2;
    }
    if (r.segmented && r.dump_dir) {
        fprintf(stderr, "audiocap caption: --dump-dir works on whole clips, not with --segment\n");
        return 2;
    }
    if (per_file_arg && !r.out_dir) {
        fprintf(stderr, "audiocap caption: --per-file needs --output-dir DIR\n");
        return 2;
    }
    if (r.out_dir && !parse_per_file(per_file_arg ? per_file_arg : "txt,json", &r.per_file)) return 2;
    if (resume && (!out_arg || r.format != F_JSONL)) {
        fprintf(stderr, "audiocap caption: --resume needs -o PATH and the jsonl format\n");
        return 2;
    }
    int shard_i = 0, shard_n = 1;
    const char *slurm_i = getenv("SLURM_ARRAY_TASK_ID"), *slurm_n = getenv("SLURM_ARRAY_TASK_COUNT");
    char slurm[64];
    if (!shard && slurm_i && slurm_n) {
        snprintf(slurm, sizeof slurm, "%s/%s", slurm_i, slurm_n);
        shard = slurm;
    }
    if (shard && (sscanf(shard, "%d/%d", &shard_i, &shard_n) != 2 || shard_n < 1 || shard_i < 0 || shard_i >= shard_n)) {
        fprintf(stderr, "audiocap caption: --shard wants I/N with 0 <= I < N, got '%s'\n", shard);
        return 2;
    }
    // -o DIR/ (or an existing folder): the shard's part file and, at the end, its completion marker
    char out_path[4096] = "", marker[4200] = "";
    if (out_arg) {
        struct stat sb;
        size_t ol = strlen(out_arg);
        if ((ol > 0 && out_arg[ol - 1] == '/') || (stat(out_arg, &sb) == 0 && S_ISDIR(sb.st_mode))) {
            if (cli_mkdir_p(out_arg) != 0) {
                fprintf(stderr, "audiocap caption: cannot create %s: %s\n", out_arg, strerror(errno));
                return 1;
            }
            snprintf(out_path, sizeof out_path, "%s%spart-%05d-of-%05d.%s", out_arg,
                     out_arg[ol - 1] == '/' ? "" : "/", shard_i, shard_n, FORMAT_EXT[r.format]);
            snprintf(marker, sizeof marker, "%s.done", out_path);
        } else {
            snprintf(out_path, sizeof out_path, "%s", out_arg);
        }
    }
    if (r.out_dir && cli_mkdir_p(r.out_dir) != 0) {
        fprintf(stderr, "audiocap caption: cannot create %s: %s\n", r.out_dir, strerror(errno));
        return 1;
    }

    ac_inputs in = {0};
    ac_status ist = AC_OK;
    for (int i = optind; i < argc && !ist; i++) ist = ac_inputs_add(&in, argv[i]);
    if (!ist && list) ist = ac_inputs_add_list(&in, list);
    if (!ist && manifest) ist = ac_inputs_add_manifest(&in, manifest, audio_dir);
    if (!ist) ist = ac_inputs_make_ids(&in);
    if (ist) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        ac_inputs_free(&in);
        return 1;
    }
    ac_inputs_shard(&in, shard_i, shard_n);
    if ((r.format == F_SRT || r.format == F_VTT) && in.n > 1) {
        fprintf(stderr, "audiocap caption: --format %s writes the subtitles of one input; for %d inputs use "
                "--output-dir DIR --per-file %s\n", FORMAT_NAMES[r.format], in.n, FORMAT_NAMES[r.format]);
        ac_inputs_free(&in);
        return 2;
    }
    char **done = NULL;
    int n_done = 0;
    if (resume && ac_done_ids(out_path, &done, &n_done) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        ac_inputs_free(&in);
        return 1;
    }
    if (marker[0] && !resume) unlink(marker);  // a fresh run of this part is not complete yet
    if (any_cpu) {
        // CPU workers share --threads. Single-threaded workers, each on its own batches, beat one worker running
        // every op on all threads (2 cores, 16 clips: 3.4 vs 2.3 clips/s, bench/RESULTS.md): no barrier per op and
        // the serial parts of one worker overlap the others' work. Results are the same either way. With fewer
        // batches than threads (a few files) the threads go to fewer workers, so one file still uses them all.
        const int total = threads > 0 ? threads : cli_cpu_count();
        if (workers == 0 && n_workers > 1) workers = n_workers;  // --device cpu,cpu,...
        if (workers == 0) {
            int64_t clips = in.n - n_done;
            if (r.segmented)  // long files: their windows, from the headers, until there are enough to go round
                for (int i = 0; i < in.n && clips < (int64_t)total * r.batch; i++) {
                    if (n_done && ac_ids_contains(done, n_done, in.ids[i])) continue;
                    const double d = ac_audio_probe_seconds(in.paths[i]);
                    if (d > r.seg_s) clips += (int64_t)ceil((d - r.seg_s) / r.hop_s);  // beyond its first window
                }
            const int64_t batches = (clips + r.batch - 1) / r.batch;
            workers = batches < total ? (int)batches : total;
        }
        if (workers > AC_MAX_DEVICES) workers = AC_MAX_DEVICES;
        if (workers < 1) workers = 1;
        n_workers = workers;
        for (int w = 0; w < n_workers; w++) devices[w] = -1;
        threads = total / n_workers > 0 ? total / n_workers : 1;
    } else {
        // GPU: --workers per listed device, each with its own stream, model copy and buffers, so that one worker's
        // host-side work (staging PCM, reading results back) and upload overlap another's kernels on the same GPU,
        // as do one batch's encoder and another's decoder. By default GPU_WORKERS, or 1 when the run has no more
        // batches than devices (a second model copy would only cost its upload and memory).
        if (workers == 0) {
            const int64_t batches = (in.n - n_done + r.batch - 1) / r.batch;
            workers = (r.segmented || batches > n_workers) && n_workers * GPU_WORKERS <= AC_MAX_DEVICES ? GPU_WORKERS : 1;
        }
        if (n_workers * workers > AC_MAX_DEVICES) {
            fprintf(stderr, "audiocap caption: %d devices x --workers %d exceeds %d workers\n", n_workers, workers,
                    AC_MAX_DEVICES);
            ac_inputs_free(&in);
            return 2;
        }
        for (int k = 1; k < workers; k++)  // interleaved (0, 1, 0, 1): the first batches go to different GPUs
            for (int d = 0; d < n_workers; d++) devices[k * n_workers + d] = devices[d];
        n_workers *= workers;
    }
    // Decoding ahead in threads feeds a GPU: every core but those of the GPU workers' threads (10 s 44.1 kHz
    // stereo files, the usual archive, decode and resample at ~110 files/s per core, FLAC at ~250:
    // bench/RESULTS.md; four threads, the old default, fed ~450 of the 800 clips/s an H200 captions). Beside a
    // CPU model that runs OpenMP teams on every core, a decode thread stalls their barriers (measured: 2-core
    // machine, 2 threads, 0.40 instead of ~1.5 clips/s), so CPU runs decode in the main thread unless told
    // otherwise. --check has no model: every core decodes.
    if (decode_threads < 0) {
        const int cores = cli_cpu_count();
        decode_threads = r.check ? cores : any_gpu ? (cores - n_workers > 2 ? cores - n_workers : 2) : 0;
        if (decode_threads > 256) decode_threads = 256;
    }
    cli_set_threads(threads);
    r.threads = threads;
    ac_model *m = NULL;
    ac_gpu_model *gms[AC_MAX_DEVICES] = {0};
    int rc = 0;
    r.sr = CHECK_RATE;
    if (r.check) goto run;
    sha_job sha = {model_path, r.model_sha, 0, 0};
    pthread_t sha_tid;
    const int sha_async = pthread_create(&sha_tid, NULL, sha_thread, &sha) == 0;
    if (!sha_async) sha_thread(&sha);
    // the CPU model for CPU workers (and for --dump-dir, which shows the CPU oracle's stages); the GPU workers'
    // models, one per device, loaded here so that a missing or too small device fails before any row
    if ((any_cpu || r.dump_dir) && ac_model_load(model_path, &m) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        rc = 1;
    }
    for (int w = 0; w < n_workers && any_gpu && !rc; w++) {
        if (ac_gpu_model_load(model_path, devices[w], r.precision, &gms[w]) != AC_OK) {
            fprintf(stderr, "audiocap caption: cuda:%d: %s\n", devices[w], ac_last_error());
            rc = 1;
        }
    }
    if (sha_async) pthread_join(sha_tid, NULL);
    if (rc) goto out;
    if (!sha.ok) {
        fprintf(stderr, "audiocap caption: cannot hash %s: %s\n", model_path, strerror(sha.err));
        rc = 1;
        goto out;
    }
    r.m = m;
    r.cfg = m ? ac_model_config_of(m) : ac_gpu_model_config(gms[0]);
    r.sr = r.cfg->frontend.sample_rate;
    r.params = (ac_decode_params){.beam_size = beam, .min_pred_size = min_len, .max_pred_size = max_len, .task = -1};
    if (task) {
        for (int i = 0; i < r.cfg->decoding.n_tasks; i++)
            if (!strcmp(r.cfg->decoding.task_names[i], task)) r.params.task = i;
        if (r.params.task < 0) {
            fprintf(stderr, "audiocap caption: task '%s' is not one of this model's tasks:", task);
            for (int i = 0; i < r.cfg->decoding.n_tasks; i++) fprintf(stderr, " %s", r.cfg->decoding.task_names[i]);
            fprintf(stderr, "%s\n", r.cfg->decoding.n_tasks ? "" : " (none: this model has no task embedding)");
            rc = 2;
            goto out;
        }
    }
    r.eff_beam = beam > 0 ? beam : r.cfg->decoding.beam_size;
    r.eff_min = min_len >= 0 ? min_len : r.cfg->decoding.min_pred_size;
    r.eff_max = max_len > 0 ? max_len : r.cfg->decoding.max_pred_size;
    r.task_name = r.cfg->decoding.n_tasks
                      ? r.cfg->decoding.task_names[r.params.task >= 0 ? r.params.task : r.cfg->decoding.default_task]
                      : NULL;
run:;
    const char *fault = getenv("AC_FAULT_NOMEM_ABOVE");
    r.fault_nomem_above = fault ? atoi(fault) : 0;
    if (out_path[0] && (r.out = open(out_path, O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), 0666)) < 0) {
        fprintf(stderr, "audiocap caption: cannot write %s: %s\n", out_path, strerror(errno));
        r.out = STDOUT_FILENO;
        rc = 1;
        goto out;
    }
    if (r.format == F_CSV)
        rc = out_emit(r.out, r.segmented ? "file_name,start_s,end_s,caption_predicted\n" : "file_name,caption_predicted\n");
    if (r.format == F_WAVCAPS) rc = out_emit(r.out, "{\"num_captions_per_audio\": 1, \"data\": [");
    if (r.format == F_VTT) rc = out_emit(r.out, "WEBVTT\n\n");

    // drop the inputs already done (--resume)
    int n_in = 0;
    for (int i = 0; i < in.n; i++) {
        if (ac_ids_contains(done, n_done, in.ids[i])) {
            free(in.paths[i]);
            free(in.ids[i]);
            r.n_skipped++;
            continue;
        }
        in.paths[n_in] = in.paths[i];
        in.ids[n_in++] = in.ids[i];
    }
    in.n = n_in;
    r.n_files = n_in;
    r.tty = isatty(STDERR_FILENO);
    r.t0 = r.last_progress = now_s();

    // one worker per device: its engine, and two batches in flight each (one captioned while one is written)
    engine engines[AC_MAX_DEVICES];
    void *ctxs[AC_MAX_DEVICES];
    for (int w = 0; w < n_workers; w++) {
        engines[w] = (engine){&r, m, gms[w], devices[w], 0};
        ctxs[w] = &engines[w];
    }
    const int max_inflight = 2 * n_workers;
    ac_job_pool *jobs = NULL;
    ac_decode_pool *pool = NULL;
    if (!rc && ac_job_pool_start(n_workers, ctxs, run_job, max_inflight, &jobs) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        rc = 1;
    }
    // window: enough decoded files to fill the batches in flight without holding much more than that in memory.
    // Without --segment only a file's first 30 s are captioned, so only they are decoded (with the resampler's
    // support): an archive of long recordings costs what 30 s clips cost, in time and memory. With it, whole
    // files are decoded, and the samples held ahead are capped at what the same window of 30 s clips would hold,
    // so a directory of two-hour recordings is not decoded dozens at a time (~0.9 GB each at 32 kHz).
    const int window = (max_inflight + 1) * r.batch + 2 * decode_threads;
    const ac_decode_opts dopts = {.sample_rate = r.sr,
                                  .head_s = r.segmented ? 0 : MAX_CLIP_SECONDS + AC_RESAMPLE_SUPPORT_S,
                                  .n_threads = decode_threads,
                                  .window = window,
                                  .max_samples = (int64_t)window * (int64_t)(MAX_CLIP_SECONDS * r.sr)};
    if (!rc && ac_decode_pool_start(in.paths, n_in, &dopts, &pool) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        rc = 1;
    }
    for (int i = 0; i < n_in && !rc; i++) {
        ac_decoded d;
        ac_decode_pool_take(pool, i, &d);
        if (d.st == AC_ERR_NOMEM) {
            fprintf(stderr, "audiocap caption: %s\n", d.error);
            free(d.x);
            rc = 1;
            break;
        }
        if (!d.st && r.dump_dir && dump_item(&r, in.ids[i], &d)) {
            free(d.x);
            rc = 1;
            break;
        }
        if (add_item(&r, in.paths[i], in.ids[i], &d)) {
            fprintf(stderr, "audiocap caption: out of memory\n");
            rc = 1;
            break;
        }
        while (!rc && n_captionable(&r) >= __atomic_load_n(&r.batch, __ATOMIC_RELAXED))
            rc = submit(&r, jobs, r.batch, max_inflight);
        if (!rc && r.n_pend > 0 && n_captionable(&r) == 0) rc = submit(&r, jobs, 0, max_inflight);  // error rows
    }
    while (!rc && r.n_pend > 0) rc = submit(&r, jobs, r.batch, max_inflight);
    if (jobs) rc = drain(&r, jobs, 2, rc);
    const int lost = jobs ? ac_job_pool_lost(jobs) : 0;
    ac_job_pool_stop(jobs);
    ac_decode_pool_stop(pool);
    discard(r.pend, r.n_pend);  // after a failure: what was never handed out
    free(r.pend);
    if (!rc && r.format == F_WAVCAPS) rc = out_emit(r.out, "\n]}\n");
    progress(&r, 1);
    double wall = now_s() - r.t0;
    char summary[1024];
    snprintf(summary, sizeof summary,
             "{\"files\":%d,\"ok\":%d,\"failed\":%d,\"skipped\":%d,\"clips\":%d,\"clips_failed\":%d,"
             "\"audio_h\":%.4f,\"wall_s\":%.2f,\"clips_per_s\":%.3f,\"device\":\"%s\",\"workers\":%d,"
             "\"threads_per_worker\":%d,\"workers_lost\":%d,\"batch_size\":%d,\"decode_threads\":%d,"
             "\"shard\":\"%d/%d\",\"complete\":%s}\n",
             r.files_done, r.files_ok, r.files_err, r.n_skipped, r.clips_ok, r.clips_err, r.audio_s / 3600, wall,
             wall > 0 ? r.clips_ok / wall : 0.0, r.device_kind, n_workers, r.threads > 0 ? r.threads : cli_cpu_count(),
             lost, __atomic_load_n(&r.batch, __ATOMIC_RELAXED), decode_threads, shard_i, shard_n, rc ? "false" : "true");
    if (!r.quiet)
        fprintf(stderr, "audiocap caption: %d ok, %d failed, %d skipped (already done), %d clips, %.1f s of audio in "
                "%.2f s (%.2f clips/s)\n", r.files_ok, r.files_err, r.n_skipped, r.clips_ok, r.audio_s, wall,
                wall > 0 ? r.clips_ok / wall : 0.0);
    if (lost && !rc)  // said even with --quiet: the rows are complete, but a device needs looking at
        fprintf(stderr, "audiocap caption: warning: %d of %d workers stopped on a device failure (see above); the "
                "others captioned their batches\n", lost, n_workers);
    else if (lost)  // the last worker failed too: the run stopped
        fprintf(stderr, "audiocap caption: %d of %d workers had stopped on a device failure before the last one "
                "failed; the rows written are whole: --resume continues the run\n", lost, n_workers);
    if (r.out != STDOUT_FILENO && close(r.out) != 0) {
        fprintf(stderr, "audiocap caption: cannot close %s: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    r.out = STDOUT_FILENO;
    if (!rc && marker[0] && out_write_atomic(marker, summary, strlen(summary))) {
        fprintf(stderr, "audiocap caption: cannot write %s: %s\n", marker, strerror(errno));
        rc = 1;
    }
out:
    if (r.out != STDOUT_FILENO) close(r.out);
    ac_ids_free(done, n_done);
    ac_inputs_free(&in);
    ac_model_free(m);
    for (int w = 0; w < AC_MAX_DEVICES; w++) ac_gpu_model_free(gms[w]);
    return rc;
}
