/*
 * quant_ops.h - the optional backend ops the search uses (reduce, scalar, gram, clip_search),
 * with a fallback to the built-in cpu backend (download, compute, upload) when the selected
 * backend does not provide one.
 */
#ifndef AWQ_QUANT_OPS_H
#define AWQ_QUANT_OPS_H

#include "quant.h"

/* out (C,) host floats = reduction of x (see awq_reduce_op). */
awq_status awq_qop_reduce(awq_search *S, float *out, const awq_tensor *x, awq_reduce_op op, int32_t group);
/* *out = SSE or DOT over all elements of a and b (device tensors of the same shape). */
awq_status awq_qop_scalar(awq_search *S, double *out, const awq_tensor *a, const awq_tensor *b,
                          awq_scalar_op op);
/* g (C, C) = x^T x. */
awq_status awq_qop_gram(awq_search *S, awq_tensor *g, const awq_tensor *x);
awq_status awq_qop_clip_search(awq_search *S, awq_tensor *best, const awq_tensor *w, const awq_tensor *x,
                               int32_t n_grid, int32_t n_steps);
void awq_qop_release(awq_search *S);

#endif
