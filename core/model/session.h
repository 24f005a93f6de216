/* session.h - internal session interface (KV cache + scratch for one token stream). */
#ifndef AWQ_CORE_SESSION_H
#define AWQ_CORE_SESSION_H

#include "forward.h"

/* Receives logits of rows [row0, row0+n) of the evaluated tokens: logits (n, vocab) F32 host. */
typedef awq_status (*awq_logits_fn)(int64_t row0, int64_t n, const float *logits, void *user);

typedef enum awq_logits_mode {
    AWQ_LOGITS_NONE = 0,
    AWQ_LOGITS_LAST = 1,
    AWQ_LOGITS_ALL = 2,
} awq_logits_mode;

/* Runs n tokens through the model in micro-batches; calls cb for the requested logits rows. */
awq_status awq_session_run(awq_session *s, const int32_t *tokens, int32_t n, awq_logits_mode mode,
                           awq_logits_fn cb, void *user);

#endif
