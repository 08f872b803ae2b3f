// Detokenisation as the reference does it (FORMAT.md tokenizer.post_decoding):
//   conette_aac: " ".join(itos[id]) then conette's post-decoding normalisers in order
//     (tokenization/aac_tokenizer.py:953-963, normalizers.py): CleanSpecialTokens "(<pad>|<bos>|<eos>|<unk>)" -> "";
//     CleanSpacesBeforePunctuation "\s+([,.!?;:"'])" -> "\1"; Strip; CleanDoubleSpaces " +" -> " ";
//     CleanHyphenSpaces "(\s*)(\-)(\s*)" -> "-"; Lowercase.
//   hf_wordlevel: tokenizers' decode(skip_special_tokens=True) with no decoder: the non-special tokens joined by
//     single spaces (the DCASE-2024 baseline's <pad>, <bos>, <eos>, <unk> are its special tokens).
// Whitespace is ASCII whitespace and lowercasing ASCII-only: both vocabularies are lowercase words (the reference
// fits them lowercased), so Python's Unicode-aware versions give the same strings.
#include "model.h"

#include <ctype.h>
#include <string.h>

static int is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

static void clean_special(char *s) {
    static const char *sp[4] = {"<pad>", "<bos>", "<eos>", "<unk>"};
    char *w = s;
    for (const char *r = s; *r;) {
        int hit = 0;
        for (int i = 0; i < 4 && !hit; i++)
            if (!strncmp(r, sp[i], 5)) {
                r += 5;
                hit = 1;
            }
        if (!hit) *w++ = *r++;
    }
    *w = '\0';
}

static void clean_space_before_punct(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (is_ws(*r)) {
            const char *e = r;
            while (is_ws(*e)) e++;
            if (*e && strchr(",.!?;:\"'", *e)) {
                r = e;  // drop the run, keep the punctuation
                continue;
            }
            while (r < e) *w++ = *r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static void strip(char *s) {
    size_t n = strlen(s), a = 0;
    while (a < n && is_ws(s[a])) a++;
    while (n > a && is_ws(s[n - 1])) n--;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

static void clean_double_spaces(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++)
        if (!(*r == ' ' && w > s && w[-1] == ' ')) *w++ = *r;  // only spaces are dropped: w[-1] was r[-1]
    *w = '\0';
}

// Each "-" absorbs the whitespace on both sides of it (re.sub is leftmost and greedy on both \s*).
static void clean_hyphen_spaces(char *s) {
    char *w = s;
    const char *r = s;
    while (*r) {
        if (*r == '-') {
            while (w > s && is_ws(w[-1])) w--;
            *w++ = *r++;
            while (is_ws(*r)) r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static void lowercase(char *s) {
    for (; *s; s++)
        if (!(*s & 0x80)) *s = (char)tolower((unsigned char)*s);
}

void ac_detokenize(const ac_model_config *cfg, const int *ids, int n, char *out, size_t cap) {
    if (cap == 0) return;
    out[0] = '\0';
    const int hf = !strcmp(cfg->tokenizer.kind, "hf_wordlevel");
    size_t len = 0;
    int first = 1;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= cfg->tokenizer.n_itos) continue;
        if (hf && (id == cfg->decoding.pad_id || id == cfg->decoding.bos_id || id == cfg->decoding.eos_id ||
                   id == cfg->decoding.unk_id))
            continue;
        const char *t = cfg->tokenizer.itos[id];
        size_t tl = strlen(t);
        if (len + tl + 2 >= cap) break;
        if (!first) out[len++] = ' ';
        memcpy(out + len, t, tl);
        len += tl;
        out[len] = '\0';
        first = 0;
    }
    if (hf) return;
    for (int i = 0; i < cfg->tokenizer.n_post; i++) {
        const char *step = cfg->tokenizer.post_decoding[i];
        if (!strcmp(step, "clean_special_tokens")) clean_special(out);
        else if (!strcmp(step, "clean_spaces_before_punctuation")) clean_space_before_punct(out);
        else if (!strcmp(step, "strip")) strip(out);
        else if (!strcmp(step, "clean_double_spaces")) clean_double_spaces(out);
        else if (!strcmp(step, "clean_hyphen_spaces")) clean_hyphen_spaces(out);
        else if (!strcmp(step, "lowercase")) lowercase(out);
    }
}
