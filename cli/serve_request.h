/*
 * serve_request.h - `awq-cli serve`: the body of a POST /v1/completions or /v1/chat/completions
 * request (parsed JSON) turned into the request's parameters, or a precise error naming the
 * parameter, as the OpenAI API reports it. Pure: no HTTP, no model, no printing; used by
 * cmd_serve.c and by the fuzz target tests/fuzz/fuzz_server_request.c.
 */
#ifndef AWQ_CLI_SERVE_REQUEST_H
#define AWQ_CLI_SERVE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "awq.h"

#define SERVE_MAX_STOPS 4 /* OpenAI's limit on "stop" strings */

/* What a request asks for; every pointer owned (serve_req_free). */
typedef struct serve_req {
    bool chat; /* /v1/chat/completions (messages) or /v1/completions (prompt) */
    bool stream, include_usage;
    bool ignore_eos;        /* llama-server's extension, for benchmarks */
    char *prompt;           /* completions */
    awq_chat_message *msgs; /* chat: roles and contents owned */
    int32_t n_msgs;
    int64_t max_tokens; /* -1: until the context is full */
    awq_sampler_params sp;
    char *stops[SERVE_MAX_STOPS];
    int32_t n_stops;
} serve_req;

/* Why a body was refused: the message and the parameter it is about (NULL: the body). */
typedef struct serve_err {
    char msg[400];
    const char *param;
} serve_err;

/* An empty request of the given kind (max_tokens -1). */
void serve_req_init(serve_req *q, bool chat);

/* Fills q (initialized by serve_req_init) from the JSON body. seed is the sampler's seed when the
 * body names none. false: e says why (an out-of-memory is reported there too, param NULL); q may
 * hold part of the body then, and is freed by serve_req_free either way. */
bool serve_parse_request(const cJSON *body, uint64_t seed, serve_req *q, serve_err *e);

/* Frees what q owns and empties it. */
void serve_req_free(serve_req *q);

#endif
