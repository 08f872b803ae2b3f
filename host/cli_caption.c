// audiocap caption: decode, resample and caption audio files with a model file on the CPU.
// Inputs are read and captioned --batch-size at a time (the decoder runs all of a batch's hypotheses together;
// results do not depend on the batch). One output row per input, in input order; a bad input is an error row and
// the run goes on. Exit codes: 2 usage, 1 systemic (model unreadable, output not writable, out of memory), else 0.
#include "cli.h"
#include "ac.h"
#include "inputs.h"
#include "model.h"
#include "npy.h"
#include "status.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLIP_SECONDS 30.0  // the models were trained on clips of at most 30 s (conette README, Limitations)

static void usage_caption(FILE *f) {
    fprintf(f,
            "usage: audiocap caption --model FILE [options] INPUT...\n\n"
            "Captions each INPUT (any format `audiocap features` reads; a directory means every audio file below it,\n"
            "sorted) with the model in FILE (a .safetensors model file: tools/fetch-model or tools/convert.py). Clips\n"
            "longer than %.0f s are captioned on their first %.0f s and the row says so (truncated_s).\n\n"
            "options:\n"
            "  -m, --model FILE     model file                                                  [required]\n"
            "  --task NAME          task token (CoNeTTE: clotho, audiocaps, macs, wavcaps_*)     [model default: clotho]\n"
            "  --beam N             beam size                                                   [model default: 3]\n"
            "  --min-len N          minimum tokens before <eos> may be chosen                   [model default: 3]\n"
            "  --max-len N          maximum tokens                                              [model default: 20]\n"
            "  --nbest              add every beam (caption, score, tokens) to the JSON row     [off]\n"
            "  --format jsonl|csv   jsonl rows, or the DCASE submission CSV file_name,caption_predicted\n"
            "                       (RFC 4180 quoting; inputs that fail are reported on stderr only)  [jsonl]\n"
            "  -o, --output FILE    write the rows to FILE; each row is one write, so a killed run never\n"
            "                       leaves half a row except at the very end (--resume cuts it)          [stdout]\n"
            "  --list FILE          also caption the paths listed in FILE, one per line (- = stdin) [none]\n"
            "  --manifest FILE      also caption the files a dataset manifest names: Clotho CSV (file_name,...),\n"
            "                       AudioCaps CSV (audiocap_id,youtube_id,start_time,...), WavCaps JSON, NeMo\n"
            "                       JSONL (audio_filepath)                                      [none]\n"
            "  --audio-dir DIR      folder the manifest's names are relative to               [the manifest's folder]\n"
            "  --resume             skip inputs whose id already has a row in the -o FILE (jsonl); append  [off]\n"
            "  --shard I/N          caption inputs I, I+N, I+2N, ... of the whole ordered set (0 <= I < N);\n"
            "                       defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when both are set  [all]\n"
            "  --batch-size N       clips captioned together                                    [8]\n"
            "  --threads N          CPU threads for BLAS and OpenMP                             [all cores]\n"
            "  --dump-dir DIR       write DIR/<id>/<stage>.npy for every stage (audio_32k, logmel, bn0, stem,\n"
            "                       stage0..3, frame_embs, projection), for comparison with the reference  [off]\n"
            "  -q, --quiet          no summary on stderr                                        [off]\n"
            "  -h, --help           this help\n\n"
            "JSON row fields: id, path, status (ok|error), error, caption, score (average log-prob of the chosen\n"
            "beam, <eos> included), tokens (generated ids), duration_s, truncated_s (when truncated), task,\n"
            "beam_size, min_pred_size, max_pred_size, model, model_sha256 (of FILE), engine, and with --nbest:\n"
            "best (index) and beams.\n",
            MAX_CLIP_SECONDS, MAX_CLIP_SECONDS);
}

// RFC 4180: quote a field that contains a comma, a quote or a line break (quotes doubled inside)
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
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

// One row = one write(2) (retried only for the rest of a partial write): rows from a killed run are whole or
// missing, except possibly the last one, which --resume cuts off.
static int emit(int fd, const char *line) {
    size_t n = strlen(line);
    while (n > 0) {
        ssize_t w = write(fd, line, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 1;
        line += w;
        n -= (size_t)w;
    }
    return 0;
}

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

typedef struct {
    const char *path, *id;
    ac_status st;
    char error[1024];
    float *x;
    int64_t n;
    double duration_s, truncated_s;
} item;

static void load_item(item *it, int sr) {
    ac_audio a;
    ac_clear_error();
    it->st = ac_audio_load(it->path, &a, NULL);
    if (!it->st) {
        it->duration_s = (double)a.n_frames / a.sample_rate;
        it->st = ac_audio_to_model_rate(&a, sr, &it->x, &it->n);
        ac_audio_free(&a);
    }
    if (it->st) {
        snprintf(it->error, sizeof it->error, "%s", ac_last_error());
        return;
    }
    int64_t max_n = (int64_t)(MAX_CLIP_SECONDS * sr);
    if (it->n > max_n) {
        it->truncated_s = it->duration_s - MAX_CLIP_SECONDS;
        it->n = max_n;
    }
}

// SHA-256 of a file as 64 hex digits (every row names the exact model that wrote it)
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
        {"audio-dir", required_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *model_path = NULL, *task = NULL, *out_path = NULL, *dump_dir = NULL, *list = NULL, *shard = NULL;
    const char *manifest = NULL, *audio_dir = NULL;
    int resume = 0;
    int beam = 0, min_len = -1, max_len = 0, nbest = 0, csv = 0, batch = 8, quiet = 0, c, threads = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'T': task = optarg; break;
        case 'b': if (!parse_int("--beam", optarg, 1, AC_MAX_BEAM, &beam)) return 2; break;
        case 'n': if (!parse_int("--min-len", optarg, 0, AC_MAX_PRED - 1, &min_len)) return 2; break;
        case 'x': if (!parse_int("--max-len", optarg, 1, AC_MAX_PRED - 1, &max_len)) return 2; break;
        case 'N': nbest = 1; break;
        case 'F':
            if (!strcmp(optarg, "csv")) csv = 1;
            else if (strcmp(optarg, "jsonl")) {
                fprintf(stderr, "audiocap caption: --format is jsonl or csv, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'o': out_path = optarg; break;
        case 'B': if (!parse_int("--batch-size", optarg, 1, 4096, &batch)) return 2; break;
        case 't': if (!parse_int("--threads", optarg, 1, 4096, &threads)) return 2; break;
        case 'd': dump_dir = optarg; break;
        case 'q': quiet = 1; break;
        case 'L': list = optarg; break;
        case 'R': resume = 1; break;
        case 'S': shard = optarg; break;
        case 'M': manifest = optarg; break;
        case 'A': audio_dir = optarg; break;
        case 'h': usage_caption(stdout); return 0;
        default: usage_caption(stderr); return 2;
        }
    }
    if (!model_path || (optind >= argc && !list && !manifest)) {
        fprintf(stderr, "audiocap caption: %s\n\n", !model_path ? "--model FILE is required" : "no INPUT given");
        usage_caption(stderr);
        return 2;
    }
    if (resume && (!out_path || csv)) {
        fprintf(stderr, "audiocap caption: --resume needs -o FILE and the jsonl format\n");
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
    char **done = NULL;
    int n_done = 0;
    if (resume && ac_done_ids(out_path, &done, &n_done) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        ac_inputs_free(&in);
        return 1;
    }
    cli_set_threads(threads);
    ac_model *m;
    if (ac_model_load(model_path, &m) != AC_OK) {
        fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
        ac_inputs_free(&in);
        ac_ids_free(done, n_done);
        return 1;
    }
    const ac_model_config *cfg = ac_model_config_of(m);
    ac_decode_params params = {.beam_size = beam, .min_pred_size = min_len, .max_pred_size = max_len, .task = -1};
    if (task) {
        for (int i = 0; i < cfg->decoding.n_tasks; i++)
            if (!strcmp(cfg->decoding.task_names[i], task)) params.task = i;
        if (params.task < 0) {
            fprintf(stderr, "audiocap caption: task '%s' is not one of this model's tasks:", task);
            for (int i = 0; i < cfg->decoding.n_tasks; i++) fprintf(stderr, " %s", cfg->decoding.task_names[i]);
            fprintf(stderr, "%s\n", cfg->decoding.n_tasks ? "" : " (none: this model has no task embedding)");
            ac_model_free(m);
            ac_inputs_free(&in);
            ac_ids_free(done, n_done);
            return 2;
        }
    }
    char model_sha[65] = "";
    if (!sha256_file(model_path, model_sha)) {
        fprintf(stderr, "audiocap caption: cannot hash %s: %s\n", model_path, strerror(errno));
        ac_model_free(m);
        ac_inputs_free(&in);
        ac_ids_free(done, n_done);
        return 1;
    }
    const int eff_beam = beam > 0 ? beam : cfg->decoding.beam_size;
    const int eff_min = min_len >= 0 ? min_len : cfg->decoding.min_pred_size;
    const int eff_max = max_len > 0 ? max_len : cfg->decoding.max_pred_size;
    const char *task_name = cfg->decoding.n_tasks
                                ? cfg->decoding.task_names[params.task >= 0 ? params.task : cfg->decoding.default_task]
                                : NULL;
    int out = STDOUT_FILENO;
    if (out_path && (out = open(out_path, O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), 0666)) < 0) {
        fprintf(stderr, "audiocap caption: cannot write %s: %s\n", out_path, strerror(errno));
        ac_model_free(m);
        ac_inputs_free(&in);
        ac_ids_free(done, n_done);
        return 1;
    }
    int rc = 0;
    if (csv) rc = emit(out, "file_name,caption_predicted\n");
    // drop the inputs already done (--resume)
    int n_in = 0, n_skipped = 0;
    for (int i = 0; i < in.n; i++) {
        if (ac_ids_contains(done, n_done, in.ids[i])) {
            free(in.paths[i]);
            free(in.ids[i]);
            n_skipped++;
            continue;
        }
        in.paths[n_in] = in.paths[i];
        in.ids[n_in++] = in.ids[i];
    }
    in.n = n_in;
    ac_ids_free(done, n_done);
    item *items = calloc((size_t)batch, sizeof(item));
    ac_caption *caps = calloc((size_t)batch, sizeof(ac_caption));
    const float **xs = calloc((size_t)batch, sizeof(float *));
    int64_t *ns = calloc((size_t)batch, sizeof(int64_t));
    int *which = calloc((size_t)batch, sizeof(int));
    int n_ok = 0, n_err = 0;
    double audio_s = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int b0 = 0; b0 < n_in && rc == 0; b0 += batch) {
        const int nb = n_in - b0 < batch ? n_in - b0 : batch;
        int k = 0;
        for (int i = 0; i < nb; i++) {
            item *it = &items[i];
            memset(it, 0, sizeof *it);
            it->path = in.paths[b0 + i];
            it->id = in.ids[b0 + i];
            load_item(it, cfg->frontend.sample_rate);
            if (it->st == AC_ERR_NOMEM) rc = 1;
            if (!it->st && dump_dir) {
                char dir[4096];
                dump_ctx dc = {dir, cli_dump_dir(dump_dir, it->id, dir, sizeof dir)};
                if (!dc.st) dump_stage(&dc, "audio_32k", it->x, 1, &it->n);
                float *mem = NULL;
                int nf, ml;
                if (!dc.st) {
                    ac_status es = ac_model_encode(m, it->x, it->n, dump_stage, &dc, &mem, &nf, &ml);
                    free(mem);
                    if (!dc.st) dc.st = es == AC_ERR_AUDIO ? AC_OK : es;  // too short: reported by its row
                }
                if (dc.st) {
                    fprintf(stderr, "audiocap caption: --dump-dir: %s\n", ac_last_error());
                    rc = 1;
                }
            }
            if (!it->st) {
                xs[k] = it->x;
                ns[k] = it->n;
                which[k++] = i;
            }
        }
        if (rc) break;
        if (k > 0 && ac_caption_clips(m, k, xs, ns, &params, caps) != AC_OK) {
            fprintf(stderr, "audiocap caption: %s\n", ac_last_error());
            rc = 1;
            break;
        }
        for (int j = 0; j < k; j++) {
            item *it = &items[which[j]];
            if (caps[j].status) {
                it->st = caps[j].status;
                snprintf(it->error, sizeof it->error, "%s: %s", it->path, caps[j].error);
            }
        }
        for (int i = 0, j = 0; i < nb; i++) {
            item *it = &items[i];
            const ac_caption *cp = (j < k && which[j] == i) ? &caps[j++] : NULL;
            const ac_hyp *best = (cp && !it->st) ? &cp->beams[cp->best] : NULL;
            if (best) {
                n_ok++;
                audio_s += it->duration_s;
            } else {
                n_err++;
            }
            if (csv) {
                if (best) {
                    char *line = NULL;
                    size_t len = 0;
                    FILE *ms = open_memstream(&line, &len);
                    if (ms) {
                        csv_field(ms, it->id);
                        fputc(',', ms);
                        csv_field(ms, best->text);
                        fputc('\n', ms);
                        fclose(ms);
                        if (emit(out, line)) rc = 1;
                    } else {
                        rc = 1;
                    }
                    free(line);
                } else {
                    fprintf(stderr, "audiocap caption: %s\n", it->error);
                }
            } else {
                cJSON *row = cJSON_CreateObject();
                cJSON_AddStringToObject(row, "id", it->id);
                cJSON_AddStringToObject(row, "path", it->path);
                cJSON_AddStringToObject(row, "status", best ? "ok" : "error");
                if (best) cJSON_AddNullToObject(row, "error");
                else cJSON_AddStringToObject(row, "error", it->error);
                if (best) {
                    cJSON_AddStringToObject(row, "caption", best->text);
                    cJSON_AddNumberToObject(row, "score", best->score);
                    cJSON_AddItemToObject(row, "tokens", ids_json(best->tokens, best->n_tokens));
                }
                if (it->duration_s > 0) cJSON_AddNumberToObject(row, "duration_s", it->duration_s);
                if (it->truncated_s > 0) cJSON_AddNumberToObject(row, "truncated_s", it->truncated_s);
                if (task_name) cJSON_AddStringToObject(row, "task", task_name);
                cJSON_AddNumberToObject(row, "beam_size", eff_beam);
                cJSON_AddNumberToObject(row, "min_pred_size", eff_min);
                cJSON_AddNumberToObject(row, "max_pred_size", eff_max);
                cJSON_AddStringToObject(row, "model", cfg->model_name);
                cJSON_AddStringToObject(row, "model_sha256", model_sha);
                cJSON_AddStringToObject(row, "engine", "audiocap " AC_VERSION);
                if (best && nbest) {
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
                char *js = cJSON_PrintUnformatted(row);
                cJSON_Delete(row);
                char *line = js ? malloc(strlen(js) + 2) : NULL;
                if (line) {
                    sprintf(line, "%s\n", js);
                    if (emit(out, line)) rc = 1;
                } else {
                    rc = 1;
                }
                free(line);
                free(js);
            }
            if (it->truncated_s > 0 && !quiet)
                fprintf(stderr, "audiocap caption: %s: %.1f s long, captioned on its first %.0f s\n", it->path,
                        it->duration_s, MAX_CLIP_SECONDS);
            free(it->x);
            it->x = NULL;
        }
        if (rc) fprintf(stderr, "audiocap caption: cannot write output: %s\n", strerror(errno));
    }
    for (int i = 0; i < batch; i++) free(items[i].x);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!quiet)
        fprintf(stderr, "audiocap caption: %d ok, %d failed, %d skipped (already done), %.1f s of audio in %.2f s "
                "(%.2f clips/s)\n", n_ok, n_err, n_skipped, audio_s, wall, wall > 0 ? n_ok / wall : 0.0);
    if (out != STDOUT_FILENO && close(out) != 0) {
        fprintf(stderr, "audiocap caption: cannot close %s: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    free(items);
    free(caps);
    free(xs);
    free(ns);
    free(which);
    ac_inputs_free(&in);
    ac_model_free(m);
    return rc;
}
