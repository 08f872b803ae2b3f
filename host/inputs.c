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
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (!st) qsort(names, (size_t)n, sizeof *names, cmp_str);
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
    int n = 0;
    ac_status st = AC_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len == 0 || line[len - 1] != '\n') break;  // torn last row
        good_end = ftell(f);
        cJSON *row = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "id");
        if (cJSON_IsString(id)) {
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
    free(line);
    if (!st) {
        fseek(f, 0, SEEK_END);
        if (ftell(f) != good_end && ftruncate(fileno(f), good_end) != 0)
            st = ac_fail(AC_ERR_IO, "%s: cannot cut the torn last row: %s", path, strerror(errno));
    }
    fclose(f);
    if (st) {
        ac_ids_free(ids, n);
        return st;
    }
    qsort(ids, (size_t)n, sizeof *ids, cmp_str);
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
