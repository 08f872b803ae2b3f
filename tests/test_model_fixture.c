// Convert -> load round trip on checkpoints made by the upstream classes: the model files that tools/convert.py
// wrote from tests/data/fixtures/tiny (ctest's convert_fixture_* steps) open with the engine's loader, and every
// tensor the loader exposes has exactly the bytes torch had (SHA-256 from tools/make_fixtures.py, tensors.json),
// under the same name, shape and dtype. The parsed configuration matches the fixture's architecture.
// usage: test_model_fixture FIXTURE_DIR MODEL.safetensors [more models...]
//   (FIXTURE_DIR holds tensors.json and manifest.json; a missing FIXTURE_DIR skips, for the optional full size)
#include "model_file.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void hex_sha256(const void *data, size_t n, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) != 1) len = 0;
    for (unsigned i = 0; i < len; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[2 * len] = '\0';
}

static const char *torch_dtype(ac_dtype d) {
    switch (d) {
    case AC_DTYPE_F32: return "float32";
    case AC_DTYPE_I64: return "int64";
    case AC_DTYPE_BOOL: return "bool";
    default: return "?";
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FIXTURE_DIR MODEL...\n", argv[0]);
        return 2;
    }
    int checks = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/tensors.json", argv[1]);
    cJSON *want = read_json_file(path);
    snprintf(path, sizeof path, "%s/manifest.json", argv[1]);
    cJSON *manifest = read_json_file(path);
    if (!want || !manifest) {
        printf("test_model_fixture: no fixture at %s (regenerate with tools/make_fixtures.py): skipped\n", argv[1]);
        return AC_SKIP;
    }
    cJSON *size = cJSON_GetObjectItem(manifest, "size");
#define SIZE(k) (cJSON_GetObjectItem(size, k) ? cJSON_GetObjectItem(size, k)->valueint : -1)
#define SIZE_AT(k, i) (cJSON_GetArrayItem(cJSON_GetObjectItem(size, k), i)->valueint)
    int vocab = (int)cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(want, "model.decoder.emb_layer.weight"), "shape"), 0)->valuedouble;
    for (int m = 2; m < argc; m++) {
        ac_model_file *mf = NULL;
        ac_status st = ac_model_file_open(argv[m], &mf);
        checks++;
        CHECK(st == AC_OK, "%s: %s", argv[m], ac_last_error());
        if (st) continue;
        const ac_model_config *cfg = ac_model_file_config(mf);
        int n = ac_model_file_n_tensors(mf), matched = 0, expected = 0;
        for (int i = 0; i < n; i++) {
            const ac_tensor *t;
            CHECK_OK(ac_model_file_tensor_at(mf, i, &t));
            cJSON *w = cJSON_GetObjectItemCaseSensitive(want, t->name);
            checks++;
            CHECK(w != NULL, "%s: tensor %s is not in the upstream state_dict", argv[m], t->name);
            if (!w) continue;
            char hex[65];
            hex_sha256(t->data, t->nbytes, hex);
            cJSON *shape = cJSON_GetObjectItem(w, "shape");
            int same_shape = cJSON_GetArraySize(shape) == t->ndim;
            for (int d = 0; same_shape && d < t->ndim; d++)
                same_shape = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble == t->shape[d];
            checks += 3;
            CHECK(same_shape, "%s: %s shape differs", argv[m], t->name);
            CHECK(!strcmp(cJSON_GetObjectItem(w, "dtype")->valuestring, torch_dtype(t->dtype)), "%s: %s is %s",
                  argv[m], t->name, ac_dtype_name(t->dtype));
            CHECK(!strcmp(cJSON_GetObjectItem(w, "sha256")->valuestring, hex), "%s: %s bytes differ from torch's",
                  argv[m], t->name);
            matched++;
        }
        cJSON *w;
        cJSON_ArrayForEach(w, want) {  // every upstream tensor is there (task ids only with task embedding)
            if (!strcmp(w->string, "model.task_id_to_token_id") && cfg->decoding.n_tasks == 0) continue;
            expected++;
            checks++;
            CHECK(ac_model_file_has_tensor(mf, w->string), "%s: upstream tensor %s missing", argv[m], w->string);
        }
        checks += 4;
        int enc_ok = 1;
        for (int i = 0; i < 4; i++)
            enc_ok &= cfg->encoder.dims[i] == SIZE_AT("dims", i) && cfg->encoder.depths[i] == SIZE_AT("depths", i);
        CHECK(enc_ok, "encoder dims/depths differ from the fixture's");
        CHECK(cfg->decoder.d_model == SIZE("d_model") && cfg->decoder.nhead == SIZE("nhead") &&
                  cfg->decoder.num_layers == SIZE("num_decoder_layers") &&
                  cfg->decoder.dim_feedforward == SIZE("dim_feedforward"),
              "decoder sizes differ from the fixture's");
        CHECK(cfg->vocab_size == vocab && cfg->tokenizer.n_itos == vocab && !strcmp(cfg->tokenizer.itos[2], "<eos>"),
              "vocabulary");
        CHECK(cfg->frontend.n_fft == SIZE("n_fft") && cfg->frontend.n_mels == SIZE("n_mels") &&
                  cfg->frontend.hop == 320, "front end");
        printf("  %-60s %3d tensors, all %d upstream tensors bit-identical; %s, %d tasks, V=%d\n", argv[m], n,
               matched == expected ? expected : -1, cfg->tokenizer.kind, cfg->decoding.n_tasks, cfg->vocab_size);
        checks++;
        CHECK(matched == expected, "%s: %d of %d upstream tensors matched", argv[m], matched, expected);
        ac_model_file_close(mf);
    }
    cJSON_Delete(want);
    cJSON_Delete(manifest);
    return test_finish("test_model_fixture", checks);
}
