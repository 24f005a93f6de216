/*
 * json.h - thin helpers over cJSON: parse files, typed getters whose errors name the file and
 * the key ("config.json: 'num_attention_heads': expected an integer, got string"), and writing.
 */
#ifndef AWQ_CORE_JSON_H
#define AWQ_CORE_JSON_H

#include <cjson/cJSON.h>

#include "internal.h"

/* Parses a whole file. Errors name the file and the byte offset of a syntax error.
 * Owned: cJSON_Delete. */
awq_status awq_json_parse_file(awq_runtime *rt, const char *path, cJSON **out);
awq_status awq_json_parse(awq_runtime *rt, const char *what, const char *text, size_t len, cJSON **out);

/* Typed getters on an object member. If the key is absent: required -> AWQ_ERR_FORMAT
 * ("<what>: missing key 'k'"), else *out = def and AWQ_OK. A present key of the wrong type or
 * range is always an error. JSON null counts as absent. */
awq_status awq_json_get_int(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                            bool required, int64_t def, int64_t *out);
awq_status awq_json_get_double(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                               bool required, double def, double *out);
awq_status awq_json_get_bool(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                             bool required, bool def, bool *out);
/* *out is borrowed from obj (NULL when absent and not required, or def). */
awq_status awq_json_get_string(awq_runtime *rt, const cJSON *obj, const char *what, const char *key,
                               bool required, const char *def, const char **out);

/* Writes root to path (indent 2, keys in insertion order), via path.tmp + rename. */
awq_status awq_json_write_file(awq_runtime *rt, const char *path, const cJSON *root);

#endif
