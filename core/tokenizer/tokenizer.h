/*
 * tokenizer.h - internal tokenizer interface (the public one is in awq.h).
 */
#ifndef AWQ_CORE_TOKENIZER_H
#define AWQ_CORE_TOKENIZER_H

#include "gguf.h"
#include "internal.h"

/* Loads a Hugging Face tokenizer.json; tokenizer_config_path (may be NULL or missing) supplies
 * add_bos_token/add_eos_token, bos/eos token strings and chat_template. Owned: destroy. */
awq_status awq_tokenizer_load_files(awq_runtime *rt, const char *tokenizer_json_path,
                                    const char *tokenizer_config_path, awq_tokenizer **out);
/* Builds a tokenizer from GGUF vocabulary metadata (tokenizer.ggml.*). */
awq_status awq_tokenizer_from_gguf(awq_runtime *rt, const awq_gguf *g, awq_tokenizer **out);
/* Writes an equivalent tokenizer.json and tokenizer_config.json into dir (used by convert). */
awq_status awq_tokenizer_write_hf(awq_runtime *rt, const awq_tokenizer *tok, const char *dir);
/* Whether the tokenizer adds BOS when add_special is true. */
bool awq_tokenizer_adds_bos(const awq_tokenizer *tok);

#endif
