// .npy reader/writer (format 1.0: magic, u16 header length, Python-literal dict, padded to 64 bytes).
#include "npy.h"
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ac_status write_npy(const char *path, const char *descr, const void *data, size_t elem, int ndim,
                           const int64_t *shape) {
    char hdr[512], shp[256] = "";
    size_t pos = 0, count = 1;
    for (int i = 0; i < ndim; i++) {
        pos += snprintf(shp + pos, sizeof shp - pos, "%lld%s", (long long)shape[i],
                        (ndim == 1 || i < ndim - 1) ? ", " : "");
        count *= (size_t)shape[i];
    }
    if (ndim == 1) shp[pos - 1] = '\0';  // "(n,)"
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    int total = 10 + len + 1;
    int padded = (total + 63) / 64 * 64;
    FILE *f = fopen(path, "wb");
    if (!f) return ac_fail(AC_ERR_IO, "%s: cannot create: %s (hint: check the directory exists and is writable)",
                           path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    unsigned hl = (unsigned)(padded - 10);
    pre[8] = (unsigned char)(hl & 0xff);
    pre[9] = (unsigned char)(hl >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    for (int i = 10 + len; ok && i < padded - 1; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (count == 0 || fwrite(data, elem, count, f) == count);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return ac_fail(AC_ERR_IO, "%s: write failed: %s (hint: disk full?)", path, strerror(errno));
    return AC_OK;
}

ac_status ac_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    return write_npy(path, "<f4", data, sizeof(float), ndim, shape);
}

ac_status ac_npy_write_i64(const char *path, const int64_t *data, int ndim, const int64_t *shape) {
    return write_npy(path, "<i8", data, sizeof(int64_t), ndim, shape);
}

void ac_npy_free(ac_npy *a) {
    if (a) free(a->data);
    if (a) memset(a, 0, sizeof *a);
}

ac_status ac_npy_read(const char *path, ac_npy *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return ac_fail(AC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[10];
    char hdr[4096];
    ac_status st = AC_OK;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
        st = ac_fail(AC_ERR_FORMAT, "%s: not a version-1 .npy file", path);
        goto done;
    }
    size_t hl = pre[8] | ((size_t)pre[9] << 8);
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) {
        st = ac_fail(AC_ERR_FORMAT, "%s: bad .npy header", path);
        goto done;
    }
    hdr[hl] = '\0';
    const char *d = strstr(hdr, "'descr': '");
    const char *s = strstr(hdr, "'shape': (");
    if (!d || !s || strstr(hdr, "'fortran_order': True")) {
        st = ac_fail(AC_ERR_FORMAT, "%s: unsupported .npy header: %s", path, hdr);
        goto done;
    }
    d += 10;
    size_t elem;
    int kind;  // 0 f4, 1 f8, 2 i4, 3 i8
    if (!strncmp(d, "<f4", 3)) kind = 0, elem = 4;
    else if (!strncmp(d, "<f8", 3)) kind = 1, elem = 8;
    else if (!strncmp(d, "<i4", 3)) kind = 2, elem = 4;
    else if (!strncmp(d, "<i8", 3)) kind = 3, elem = 8;
    else {
        st = ac_fail(AC_ERR_FORMAT, "%s: unsupported dtype in %s", path, hdr);
        goto done;
    }
    s += 10;
    out->size = 1;
    while (*s && *s != ')') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        if (out->ndim == AC_NPY_MAX_DIMS || v < 0) {
            st = ac_fail(AC_ERR_FORMAT, "%s: bad shape in %s", path, hdr);
            goto done;
        }
        out->shape[out->ndim++] = v;
        out->size *= v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    void *raw = malloc(out->size * elem + 1);
    out->data = malloc(out->size * sizeof(double) + 1);
    if (!raw || !out->data) {
        free(raw);
        st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(raw, elem, (size_t)out->size, f) != (size_t)out->size) {
        free(raw);
        st = ac_fail(AC_ERR_FORMAT, "%s: truncated .npy data", path);
        goto done;
    }
    for (int64_t i = 0; i < out->size; i++) {
        switch (kind) {
        case 0: out->data[i] = ((float *)raw)[i]; break;
        case 1: out->data[i] = ((double *)raw)[i]; break;
        case 2: out->data[i] = ((int32_t *)raw)[i]; break;
        default: out->data[i] = (double)((int64_t *)raw)[i]; break;
        }
    }
    free(raw);
done:
    fclose(f);
    if (st) ac_npy_free(out);
    return st;
}
