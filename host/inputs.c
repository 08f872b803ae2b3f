// Input sets, ids, shards and resume bookkeeping for bulk captioning (see inputs.h).
#define _GNU_SOURCE
#include "inputs.h"
#include "status.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const EXTS[] = {"wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "w64", "caf"};

static int is_audio_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof EXTS / sizeof *EXTS; i++)
        if (!strcasecmp(dot + 1, EXTS[i])) return 1;
    return 0;
}

static ac_status push(ac_inputs *in, const char *path) {
    if (in->n == in->cap) {
        int cap = in->cap ? 2 * in->cap : 64;
        char **p = realloc(in->paths, sizeof(char *) * cap);
        if (!p) return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
        in->paths = p;
        in->cap = cap;
    }
    if (!(in->paths[in->n] = strdup(path))) return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
    in->n++;
    return AC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ac_status add_dir(ac_inputs *in, const char *dir, int depth) {
    if (depth > 64) return ac_fail(AC_ERR_IO, "%s: directories nested more than 64 deep (a link loop?)", dir);
    DIR *d = opendir(dir);
    if (!d) return ac_fail(AC_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    ac_status st = AC_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;  // ".", "..", hidden files
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, sizeof(char *) * cap);
            if (!p) {
                st = ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
                break;
            }
            names = p;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            st = ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
            break;
        }
        const size_t dl = strlen(dir);
        snprintf(names[n++], len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
    }
    closedir(d);
    if (!st && n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && !st; i++) {
        struct stat s;
        if (stat(names[i], &s) != 0) continue;  // a dangling link: not an input
        if (S_ISDIR(s.st_mode)) st = add_dir(in, names[i], depth + 1);
        else if (S_ISREG(s.st_mode) && is_audio_name(names[i])) st = push(in, names[i]);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

ac_status ac_inputs_add(ac_inputs *in, const char *path) {
    struct stat s;
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode)) return add_dir(in, path, 0);
    return push(in, path);
}

ac_status ac_inputs_add_list(ac_inputs *in, const char *list_path) {
    FILE *f = strcmp(list_path, "-") ? fopen(list_path, "r") : stdin;
    if (!f) return ac_fail(AC_ERR_IO, "%s: cannot open list: %s", list_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    ac_status st = AC_OK;
    while (!st && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len > 0) st = push(in, line);
    }
    free(line);
    if (f != stdin) fclose(f);
    return st;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

typedef struct {
    const char *name;
    int index;
} named;

static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

ac_status ac_inputs_make_ids(ac_inputs *in) {
    // O(n log n): sort (file name, index); a file name that occurs twice makes those inputs use their path
    named *by = malloc(sizeof(named) * (in->n ? in->n : 1));
    in->ids = calloc((size_t)(in->n ? in->n : 1), sizeof(char *));
    if (!by || !in->ids) {
        free(by);
        return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
    }
    for (int i = 0; i < in->n; i++) by[i] = (named){base_name(in->paths[i]), i};
    qsort(by, (size_t)in->n, sizeof *by, cmp_named);
    for (int i = 0; i < in->n; i++) {
        int amb = (i > 0 && !strcmp(by[i].name, by[i - 1].name)) || (i + 1 < in->n && !strcmp(by[i].name, by[i + 1].name));
        int k = by[i].index;
        if (!(in->ids[k] = strdup(amb ? in->paths[k] : by[i].name))) {
            free(by);
            return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
        }
    }
    free(by);
    return AC_OK;
}

void ac_inputs_shard(ac_inputs *in, int i, int n) {
    int k = 0;
    for (int j = 0; j < in->n; j++) {
        if (j % n == i) {
            in->paths[k] = in->paths[j];
            if (in->ids) in->ids[k] = in->ids[j];
            k++;
        } else {
            free(in->paths[j]);
            if (in->ids) free(in->ids[j]);
        }
    }
    in->n = k;
}

void ac_inputs_free(ac_inputs *in) {
    for (int i = 0; i < in->n; i++) {
        free(in->paths[i]);
        if (in->ids) free(in->ids[i]);
    }
    free(in->paths);
    free(in->ids);
    memset(in, 0, sizeof *in);
}

ac_status ac_done_ids(const char *path, char ***ids_out, int *n_out) {
    *ids_out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r+");
    if (!f) {
        if (errno == ENOENT) return AC_OK;  // nothing done yet
        return ac_fail(AC_ERR_IO, "%s: cannot open for --resume: %s", path, strerror(errno));
    }
    char *line = NULL, **ids = NULL;
    size_t cap = 0;
    ssize_t len;
    long good_end = 0;
    // Segment rows (--segment) come in groups, one row per segment, written over several batches: a group cut
    // short by a kill is the last thing in the file; it is cut off whole and its file captioned again.
    long group_start = 0;
    int n = 0, group_open = 0;
    ac_status st = AC_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len == 0 || line[len - 1] != '\n') break;  // torn last row
        const long row_start = good_end;
        good_end = ftell(f);
        cJSON *row = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
        const cJSON *seg = cJSON_GetObjectItemCaseSensitive(row, "segment");
        const cJSON *nseg = cJSON_GetObjectItemCaseSensitive(row, "n_segments");
        const int segmented = cJSON_IsNumber(seg) && cJSON_IsNumber(nseg);
        if (segmented && seg->valueint == 0) group_start = row_start;
        group_open = segmented && seg->valueint + 1 < nseg->valueint;
        if (cJSON_IsString(id) && (!segmented || seg->valueint == 0)) {
            char **p = realloc(ids, sizeof(char *) * (n + 1));
            if (!p || !(p[n] = strdup(id->valuestring))) {
                ids = p ? p : ids;
                cJSON_Delete(row);
                st = ac_fail(AC_ERR_NOMEM, "resume: out of memory");
                break;
            }
            ids = p;
            n++;
        }
        cJSON_Delete(row);
    }
    if (!st && group_open) {  // the last file's segments are incomplete: forget them
        good_end = group_start;
        free(ids[--n]);
    }
    free(line);
    if (!st) {
        fseek(f, 0, SEEK_END);
        if (ftell(f) != good_end && ftruncate(fileno(f), good_end) != 0)
            st = ac_fail(AC_ERR_IO, "%s: cannot cut the torn last row or segment group: %s", path, strerror(errno));
    }
    fclose(f);
    if (st) {
        ac_ids_free(ids, n);
        return st;
    }
    if (n > 1) qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    *ids_out = ids;
    *n_out = n;
    return AC_OK;
}

int ac_ids_contains(char *const *ids, int n, const char *id) {
    return n > 0 && bsearch(&id, ids, (size_t)n, sizeof *ids, cmp_str) != NULL;
}

void ac_ids_free(char **ids, int n) {
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

// ---- dataset manifests --------------------------------------------------------------------------------------------
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (k < 0 || i + (size_t)k >= n) return 0;
        for (int j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

// ISO-8859-1 -> UTF-8 (every byte is a code point)
static char *latin1_to_utf8(const char *s, size_t n) {
    char *o = malloc(2 * n + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) *w++ = (char)c;
        else *w++ = (char)(0xC0 | (c >> 6)), *w++ = (char)(0x80 | (c & 0x3F));
    }
    *w = '\0';
    return o;
}

// RFC 4180 record reader: fields separated by `delim`, optionally quoted ("" inside quotes); a quoted field may
// span lines. Returns the number of fields (0 at end of text); fields point into `scratch` (NUL-terminated).
#define MAX_FIELDS 64
static int csv_record(const char **pp, char delim, char *scratch, char **fields) {
    const char *p = *pp;
    if (!*p) return 0;
    int nf = 0;
    char *w = scratch;
    fields[nf++] = w;
    int quoted = 0;
    for (;; p++) {
        char c = *p;
        if (quoted) {
            if (!c) break;
            if (c == '"' && p[1] == '"') *w++ = '"', p++;
            else if (c == '"') quoted = 0;
            else *w++ = c;
        } else if (c == '"') {
            quoted = 1;
        } else if (c == delim) {
            *w++ = '\0';
            if (nf < MAX_FIELDS) fields[nf++] = w;
        } else if (c == '\n' || c == '\0') {
            break;
        } else if (c != '\r') {
            *w++ = c;
        }
    }
    *w = '\0';
    *pp = *p ? p + 1 : p;
    return nf;
}

static ac_status push_under(ac_inputs *in, const char *dir, const char *name) {
    if (name[0] == '/') return push(in, name);
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (!path) return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
    snprintf(path, len, "%s/%s", dir, name);
    ac_status st = push(in, path);
    free(path);
    return st;
}

static ac_status csv_manifest(ac_inputs *in, const char *path, char *text, const char *dir) {
    const char *p = text;
    char *scratch = malloc(strlen(text) + 1), *f[MAX_FIELDS];
    if (!scratch) return ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
    const char *eol = strchr(p, '\n');
    size_t hl = eol ? (size_t)(eol - p) : strlen(p);
    char delim = (memchr(p, ';', hl) && !memchr(p, ',', hl)) ? ';' : ',';
    int nf = csv_record(&p, delim, scratch, f);
    ac_status st = AC_OK;
    if (nf >= 1 && !strcmp(f[0], "file_name")) {  // Clotho (and Clotho-style AudioCaps/WavCaps CSVs)
        while (!st && (nf = csv_record(&p, delim, scratch, f)) > 0)
            if (f[0][0]) st = push_under(in, dir, f[0]);
    } else if (nf >= 3 && !strcmp(f[0], "audiocap_id") && !strcmp(f[1], "youtube_id") && !strcmp(f[2], "start_time")) {
        // one input per clip (val/test list each clip 5 times, not necessarily on adjacent rows), in first-seen order
        named *keys = NULL;
        int nk = 0;
        while (!st && (nf = csv_record(&p, delim, scratch, f)) >= 3) {
            size_t kl = strlen(f[1]) + strlen(f[2]) + 2;
            char *key = malloc(kl);
            named *k2 = realloc(keys, sizeof(named) * (nk + 1));
            if (!key || !k2) {
                free(key);
                keys = k2 ? k2 : keys;
                st = ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
                break;
            }
            snprintf(key, kl, "%s\t%s", f[1], f[2]);
            keys = k2;
            keys[nk] = (named){key, nk};
            nk++;
        }
        named *sorted = st ? NULL : malloc(sizeof(named) * (nk ? nk : 1));
        unsigned char *drop = st ? NULL : calloc((size_t)(nk ? nk : 1), 1);
        if (!st && (!sorted || !drop)) st = ac_fail(AC_ERR_NOMEM, "inputs: out of memory");
        if (!st) {
            memcpy(sorted, keys, sizeof(named) * nk);
            qsort(sorted, (size_t)nk, sizeof *sorted, cmp_named);  // by key, then first index
            for (int i = 1; i < nk; i++)
                if (!strcmp(sorted[i].name, sorted[i - 1].name)) drop[sorted[i].index] = 1;
        }
        for (int i = 0; i < nk && !st; i++) {
            if (drop[i]) continue;
            char *tab = strchr(keys[i].name, '\t');
            *tab = '\0';
            char a[8192], b[8192];
            snprintf(a, sizeof a, "%s/%s_%s.flac", dir, keys[i].name, tab + 1);
            snprintf(b, sizeof b, "%s/Y%s.wav", dir, keys[i].name);
            st = push(in, access(a, F_OK) != 0 && access(b, F_OK) == 0 ? b : a);
        }
        for (int i = 0; i < nk; i++) free((char *)keys[i].name);
        free(keys);
        free(sorted);
        free(drop);
    } else {
        st = ac_fail(AC_ERR_FORMAT, "%s: unknown CSV manifest (header '%s'; hint: Clotho CSVs start with file_name, "
                     "AudioCaps CSVs with audiocap_id,youtube_id,start_time)", path, nf ? f[0] : "");
    }
    free(scratch);
    return st;
}

ac_status ac_inputs_add_manifest(ac_inputs *in, const char *path, const char *audio_dir) {
    size_t len;
    char *text = slurp(path, &len);
    if (!text) return ac_fail(AC_ERR_IO, "%s: cannot read manifest: %s", path, strerror(errno));
    char dirbuf[4096];
    if (!audio_dir) {
        snprintf(dirbuf, sizeof dirbuf, "%s", path);
        char *slash = strrchr(dirbuf, '/');
        if (slash) *slash = '\0';
        else snprintf(dirbuf, sizeof dirbuf, ".");
        audio_dir = dirbuf;
    }
    ac_status st = AC_OK;
    const char *t = text;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n') t++;
    if (*t == '{' && strstr(text, "\"audio_filepath\"")) {  // NeMo JSONL
        for (char *line = text, *next; line && *line && !st; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = '\0';
            cJSON *o = cJSON_Parse(line);
            const cJSON *af = cJSON_GetObjectItemCaseSensitive(o, "audio_filepath");
            if (cJSON_IsString(af)) st = push_under(in, audio_dir, af->valuestring);
            else if (line[strspn(line, " \t\r")]) st = ac_fail(AC_ERR_FORMAT, "%s: a JSONL line without audio_filepath", path);
            cJSON_Delete(o);
        }
    } else if (*t == '{') {  // WavCaps
        cJSON *j = cJSON_Parse(t);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data"), *e;
        if (!cJSON_IsArray(data)) st = ac_fail(AC_ERR_FORMAT, "%s: JSON manifest without a \"data\" array (WavCaps)", path);
        cJSON_ArrayForEach(e, data) {
            if (st) break;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            char name[1024];
            if (cJSON_IsString(id)) {
                snprintf(name, sizeof name, "%s", id->valuestring);
                size_t l = strlen(name);
                if (l > 4 && !strcasecmp(name + l - 4, ".wav")) name[l - 4] = '\0';  // AudioSet_SL ids
                strncat(name, ".flac", sizeof name - strlen(name) - 1);
            } else if (cJSON_IsNumber(id)) {
                snprintf(name, sizeof name, "%.0f.flac", id->valuedouble);
            } else {
                st = ac_fail(AC_ERR_FORMAT, "%s: a WavCaps entry without an id", path);
                break;
            }
            st = push_under(in, audio_dir, name);
        }
        cJSON_Delete(j);
    } else {
        char *utf8 = valid_utf8((const unsigned char *)text, len) ? NULL : latin1_to_utf8(text, len);
        st = csv_manifest(in, path, utf8 ? utf8 : text, audio_dir);
        free(utf8);
    }
    free(text);
    return st;
}
