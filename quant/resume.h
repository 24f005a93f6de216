/*
 * resume.h - crash-safe, resumable quantization (resume.c) and the checkpoint manifest
 * (manifest.c).
 *
 * While awq_quantize runs, its temporary directory OUT.tmp-XXXXXX holds, besides the shards
 * being filled:
 *   progress/fingerprint.json   everything that determines the result (see awq_fingerprint_build)
 *   progress/layer-NNNNN.json   one record per finished decoder layer: the name, size and SHA-256
 *                               of every tensor the layer wrote; each is written to a .tmp file,
 *                               fsync'd, renamed, and the directory fsync'd, after the shards
 *                               themselves were fsync'd, so a record only exists for data on disk
 *   progress/lock               flock'ed by the process working in the directory
 * A rerun of the same command finds the directory, checks the fingerprint, verifies the hashes
 * of the recorded layers, copies them into fresh shards and continues with the next layer. When
 * the checkpoint is complete, awq-manifest.json (the SHA-256 of every file) is written, progress/
 * is removed and the directory renamed to OUT.
 */
#ifndef AWQ_QUANT_RESUME_H
#define AWQ_QUANT_RESUME_H

#include <cjson/cJSON.h>

#include "internal.h"

#define AWQ_PROGRESS_DIR  "progress"
#define AWQ_MANIFEST_NAME "awq-manifest.json"

struct awq_safetensors;
struct awq_model_config;

/* The fingerprint of a quantization: a JSON object of string values, keys readable in messages
 * ("option --group-size", "calibration text sha256", "input model.safetensors header sha256"):
 * the awq version, every option that changes the result, the resolved backend, the SHA-256 of
 * the calibration text, of config.json and of every tokenizer/generation file copied into the
 * output, and of each input shard its size, mtime and header SHA-256. Keys ending in " mtime"
 * are "volatile": they decide whether a partial run may be resumed but are left out of the
 * published manifest (so identical inputs give identical checkpoints on any machine).
 * Owned: cJSON_Delete. */
awq_status awq_fingerprint_build(awq_runtime *rt, const awq_quant_params *p, int32_t n_layers,
                                 const struct awq_safetensors *st, const char *backend, cJSON **out);
/* Writes "key: old -> new; ..." for every difference (at most cap bytes) and returns their
 * count. ignore_volatile skips the mtime keys. */
int awq_fingerprint_diff(const cJSON *old, const cJSON *cur, bool ignore_volatile, char *buf, size_t cap);

/* A temporary directory chosen for the run. */
typedef struct awq_resume {
    char tmp_dir[4096]; /* OUT.tmp-XXXXXX to continue; "" to start a new one */
    int lock_fd;        /* flock held on tmp_dir/progress/lock, -1 if none */
} awq_resume;

/* Looks at the OUT.tmp-* directories beside p->out_dir. Resuming (default): the one whose
 * fingerprint equals fp (and the most layers done) is locked and returned; stale ones are
 * logged with their size; if none matches but some hold partial work made with other inputs,
 * the call refuses (AWQ_ERR_EXISTS) naming what changed. p->no_resume: partial runs of OUT are
 * removed (those another process is using are left alone) and a fresh start is returned. */
awq_status awq_resume_find(awq_runtime *rt, const awq_quant_params *p, const cJSON *fp, awq_resume *out);
void awq_resume_release(awq_resume *r);

/* Creates progress/ in a new temporary directory, writes fp there and takes the lock. */
awq_status awq_progress_init(awq_runtime *rt, const char *tmp_dir, const cJSON *fp, int *lock_fd);

/* Number of consecutive layer records (layer-00000.json, layer-00001.json, ...) in tmp_dir. */
int32_t awq_progress_layers_done(const char *tmp_dir, int32_t n_layers);

/* ---- small durable-file helpers (resume.c) ------------------------------------------------ */

/* fsync of a file or directory by path. */
awq_status awq_fsync_path(awq_runtime *rt, const char *path);
/* awq_json_write_file (tmp + fsync + rename) followed by an fsync of the directory. */
awq_status awq_json_write_durable(awq_runtime *rt, const char *path, const cJSON *root);
/* Splits out_dir into its parent directory and base name (trailing slashes dropped). */
void awq_split_out_dir(const char *out_dir, char *parent, size_t pcap, char *base, size_t bcap);

/* ---- manifest (manifest.c) ---------------------------------------------------------------- */

/* Writes dir/awq-manifest.json: the fingerprint (volatile keys dropped) and the size and SHA-256
 * of every regular file in dir (except the manifest and the progress directory). */
awq_status awq_manifest_write(awq_runtime *rt, const char *dir, const cJSON *fp);

#endif
