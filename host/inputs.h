// Input sets for bulk runs: files, directories (recursive, audio extensions), file lists; stable ids; shards;
// and the ids already present in an output file, for --resume.
#ifndef AC_INPUTS_H
#define AC_INPUTS_H

#include "ac.h"

typedef struct {
    char **paths;  // owned
    char **ids;    // owned: the file name, or the path as given when two inputs share a file name
    int n, cap;
} ac_inputs;

// Adds a file, or every audio file under a directory (recursively, sorted by path; extensions: wav, flac, ogg,
// oga, opus, mp3, aif, aiff, aifc, au, w64, caf, case-insensitive). A missing path is kept: it becomes an error row.
ac_status ac_inputs_add(ac_inputs *in, const char *path);
// Adds every non-empty line of a list file ("-": standard input); a trailing CR is ignored.
ac_status ac_inputs_add_list(ac_inputs *in, const char *list_path);
// Adds the audio files a dataset manifest names, resolved against audio_dir (NULL: the manifest's folder):
//   Clotho captions/metadata CSV (first column file_name; ',' or ';'), AudioCaps CSV (audiocap_id,youtube_id,
//   start_time,...: one input per clip, {youtube_id}_{start_time}.flac or else Y{youtube_id}.wav), WavCaps JSON
//   ({"data": [{"id": ...}]}: <id>.flac, an AudioSet_SL id's .wav becoming .flac), NeMo JSONL (audio_filepath).
// CSV text that is not UTF-8 is read as ISO-8859-1 (Clotho's metadata files). Listed files that are missing stay
// inputs: they become error rows.
ac_status ac_inputs_add_manifest(ac_inputs *in, const char *manifest, const char *audio_dir);
// Computes ids over the whole set (call once, after adding everything, before sharding).
ac_status ac_inputs_make_ids(ac_inputs *in);
// Keeps inputs i, i+N, i+2N, ... of the full, ordered set (0 <= i < N).
void ac_inputs_shard(ac_inputs *in, int i, int n);
void ac_inputs_free(ac_inputs *in);

// Ids of the complete rows of a JSONL output (each an object with "id"); a last line without its newline (a row
// torn by a kill) is cut off the file, and so is a last group of segment rows ("segment", "n_segments") that
// stops short of its last segment. Returns a sorted array (free with ac_ids_free); *n its length.
ac_status ac_done_ids(const char *jsonl_path, char ***ids, int *n);
int ac_ids_contains(char *const *ids, int n, const char *id);
void ac_ids_free(char **ids, int n);

#endif
