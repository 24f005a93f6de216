/*
 * cmd_serve.c - `awq-cli serve`: an OpenAI-compatible HTTP server with continuous batching.
 *
 * HTTP: libmicrohttpd (Debian's libmicrohttpd-dev; a maintained, small C library that does
 * HTTP/1.1, chunked responses and connection limits itself), one thread per connection: a
 * handler may block while its request waits for tokens. Endpoints: POST /v1/chat/completions,
 * POST /v1/completions (server-sent events with "stream": true), GET /v1/models, GET /health.
 *
 * Inference runs on one scheduler thread that owns the model: up to --parallel slots, each with
 * its own session (KV cache), sampler, detokenizer and stop-string matcher. Every step it takes
 * new requests (chat template + tokenization, validation), admits waiting ones into free slots
 * (prefill), and decodes one token for every active slot in one batched forward pass
 * (awq_session_decode_batch). A request whose client hangs up is dropped before the next step.
 *
 * Layout: request/server state, JSON helpers, the scheduler thread, the HTTP handlers, the
 * command. The body of a request is parsed in serve_request.c (no HTTP, no model; fuzzed).
 */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli.h"
#include "serve_request.h"

#define MAX_QUEUE 256 /* requests waiting for a slot before new ones get 503 */

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli serve MODEL_DIR [options]\n"
            "\n"
            "  --host ADDR        address to bind (default 127.0.0.1: this machine only;\n"
            "                     0.0.0.0 or :: to listen on every interface)\n"
            "  --port N           TCP port (default 8080; 0 picks a free one, printed at start)\n"
            "  --parallel N       sequences decoded together (slots, default 4)\n"
            "  --ctx-size N       context of each slot in tokens (default min(model, 4096))\n"
            "  --api-key KEY      require \"Authorization: Bearer KEY\" on /v1/* (or $AWQ_API_KEY)\n"
            "  --max-body BYTES   largest request body (default 4194304)\n"
            "  --alias NAME       model id reported by /v1/models (default: directory name)\n"
            "  --backend B        auto | cpu | cpu-dnnl | opencl[:N] | cuda[:N]\n"
            "  --lm-head F        stored (default) | q8: the fp16 lm_head re-quantized to 8 bits\n"
            "                     at load (llama.cpp Q8_0; cpu and cpu-dnnl backends)\n"
            "  -t, --threads N    CPU threads\n"
            "  -v, --verbose      log every decoding step\n"
            "\n"
            "Endpoints: POST /v1/chat/completions, POST /v1/completions (stream: true for\n"
            "server-sent events), GET /v1/models, GET /health. Request fields: max_tokens\n"
            "(max_completion_tokens), temperature (default 1), top_p, top_k, min_p, seed, stop\n"
            "(up to 4 strings), presence_penalty, frequency_penalty, repeat_penalty, n (1 only),\n"
            "stream, stream_options.include_usage, ignore_eos. Ctrl-C stops the server.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Server log lines: "serve: HH:MM:SS message" on stderr. */
static void slog(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    fprintf(stderr, "serve: %02d:%02d:%02d %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec, msg);
}

/* ---- state ------------------------------------------------------------------------------- */

typedef enum req_state {
    REQ_NEW,     /* parsed, not yet tokenized */
    REQ_WAITING, /* tokenized, waiting for a slot */
    REQ_RUNNING, /* in a slot */
    REQ_DONE,    /* finished (text complete) */
    REQ_FAILED,  /* rejected by the scheduler: http_status + err */
} req_state;

typedef struct request {
    int64_t id;
    serve_req q; /* what the body asks for (serve_request.h) */
    int fd;      /* the client's socket, to notice a hang-up */
    double t0;
    /* scheduler side */
    int32_t *ids; /* (n_ids,) prompt tokens */
    int32_t n_ids;
    /* shared, under server.mu */
    req_state state;
    int http_status;
    char err[512];
    const char *err_param, *err_code;
    char *text; /* generated text so far */
    size_t len, cap;
    int32_t prompt_tokens, completion_tokens;
    const char *finish; /* "stop" | "length" */
    bool cancelled;     /* the client went away */
    int refs;           /* the HTTP side and the scheduler */
    pthread_cond_t cond;
    struct request *next; /* incoming list */
} request;

typedef struct slot {
    int index;
    awq_session *sess;
    awq_sampler *smp;
    awq_detok *dt;
    awq_stop *stop;
    request *req; /* NULL when free */
    int32_t next; /* the token to decode next */
    int64_t n_gen, max_gen;
} slot;

typedef struct server {
    awq_runtime *rt;
    awq_model *model;
    awq_tokenizer *tok;
    awq_model_info info;
    const char *alias;
    const char *api_key;
    size_t max_body;
    int32_t n_ctx;
    int n_slots;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the scheduler waits on it */
    request *incoming;   /* REQ_NEW requests, newest first */
    int n_queued;        /* NEW + WAITING */
    bool stopping;
    int64_t next_id;
    time_t created;
    /* statistics (scheduler thread) */
    int64_t steps, step_tokens, step_max;
    double t_stats, t_busy; /* start of the period, seconds spent in decoding steps */
} server;

static server S;

/* Drops one reference; the last one frees the request. Call with S.mu held. */
static void req_release(request *r) {
    if (--r->refs > 0) return;
    serve_req_free(&r->q);
    free(r->ids);
    free(r->text);
    pthread_cond_destroy(&r->cond);
    free(r);
}

/* Appends generated text and wakes the waiting handler. Call with S.mu held. */
static void req_append(request *r, const char *s, size_t n) {
    if (n == 0) return;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1) cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t) return; /* out of memory: the text is cut, the request still finishes */
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
    pthread_cond_broadcast(&r->cond);
}

/* True when the peer has closed its side of the connection. */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ---- JSON responses ---------------------------------------------------------------------- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* OpenAI-style error body: {"error": {"message", "type", "param", "code"}}. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *param, const char *code, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    slog("%u %s", status, msg);
    return send_json(c, status, j);
}

static cJSON *usage_json(const request *r) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", r->prompt_tokens + r->completion_tokens);
    return u;
}

/* The response object (stream chunk when chunk; delta text, or the whole text). Call with S.mu
 * held when it reads r's shared fields. */
static cJSON *completion_json(const request *r, bool chunk, const char *text, size_t n, bool first,
                              const char *finish) {
    char id[48];
    snprintf(id, sizeof id, "%s-%lld", r->q.chat ? "chatcmpl" : "cmpl", (long long)r->id);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", id);
    cJSON_AddStringToObject(
        j, "object", r->q.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(j, "created", (double)time(NULL));
    cJSON_AddStringToObject(j, "model", S.alias);
    cJSON *choices = cJSON_AddArrayToObject(j, "choices");
    if (text || finish || first) {
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", 0);
        char *t = malloc(n + 1);
        if (t) {
            if (n) memcpy(t, text, n);
            t[n] = '\0';
        }
        if (r->q.chat) {
            cJSON *m = cJSON_AddObjectToObject(ch, chunk ? "delta" : "message");
            if (!chunk || first) cJSON_AddStringToObject(m, "role", "assistant");
            if (text || !chunk || first) cJSON_AddStringToObject(m, "content", t ? t : "");
        } else {
            cJSON_AddStringToObject(ch, "text", t ? t : "");
            cJSON_AddNullToObject(ch, "logprobs");
        }
        free(t);
        if (finish)
            cJSON_AddStringToObject(ch, "finish_reason", finish);
        else
            cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
    }
    if (!chunk) cJSON_AddItemToObject(j, "usage", usage_json(r));
    return j;
}

/* ---- the scheduler thread ---------------------------------------------------------------- */

/* Tokenizes a new request (chat template for chat). On failure fills r->err and returns false. */
static bool prepare(request *r) {
    char *text = NULL;
    const char *src = r->q.prompt;
    awq_status st;
    if (r->q.chat) {
        st = awq_tokenizer_apply_chat(S.tok, r->q.msgs, r->q.n_msgs, true, &text);
        if (st != AWQ_OK) {
            snprintf(r->err, sizeof r->err, "chat template: %s", awq_runtime_last_error(S.rt));
            r->err_param = "messages";
            return false;
        }
        src = text;
    }
    int64_t n = 0;
    bool special = !r->q.chat; /* the chat template writes its own BOS, as generate --chat */
    st = awq_tokenizer_encode(S.tok, src, strlen(src), special, NULL, 0, &n);
    if (st == AWQ_OK && n > 0 && (r->ids = malloc((size_t)n * sizeof *r->ids)))
        st = awq_tokenizer_encode(S.tok, src, strlen(src), special, r->ids, n, &n);
    awq_free(text);
    if (st != AWQ_OK || n == 0 || !r->ids) {
        snprintf(r->err, sizeof r->err, "%s", n == 0 ? "the prompt is empty" : awq_runtime_last_error(S.rt));
        r->err_param = r->q.chat ? "messages" : "prompt";
        return false;
    }
    if (n + 1 > S.n_ctx) {
        snprintf(r->err, sizeof r->err,
                 "the prompt has %lld tokens; this server's context (--ctx-size) is %d tokens", (long long)n,
                 S.n_ctx);
        r->err_param = r->q.chat ? "messages" : "prompt";
        r->err_code = "context_length_exceeded";
        return false;
    }
    r->n_ids = (int32_t)n;
    return true;
}

static void slot_free(slot *s) {
    awq_sampler_destroy(s->smp);
    awq_detok_destroy(s->dt);
    awq_stop_destroy(s->stop);
    s->smp = NULL;
    s->dt = NULL;
    s->stop = NULL;
    pthread_mutex_lock(&S.mu);
    req_release(s->req);
    pthread_mutex_unlock(&S.mu);
    s->req = NULL;
}

/* Ends the slot's request with finish reason why ("stop" | "length"). */
static void finish(slot *s, const char *why) {
    request *r = s->req;
    char buf[64];
    size_t n = 0;
    const char *out;
    size_t out_len;
    bool stopped = false;
    if (awq_detok_flush(s->dt, buf, sizeof buf, &n) == AWQ_OK && n)
        awq_stop_push(s->stop, buf, n, &out, &out_len, &stopped);
    else
        out_len = 0;
    pthread_mutex_lock(&S.mu);
    if (out_len) req_append(r, out, out_len);
    if (!stopped && awq_stop_flush(s->stop, &out, &out_len) == AWQ_OK) req_append(r, out, out_len);
    r->completion_tokens = (int32_t)s->n_gen;
    r->finish = why;
    r->state = REQ_DONE;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&S.mu);
    slog("req %lld: slot %d done (%s): prompt %d, generated %lld tokens in %.2f s", (long long)r->id,
         s->index, why, r->prompt_tokens, (long long)s->n_gen, now_s() - r->t0);
    slot_free(s);
}

/* Takes the logits of the slot's last token: samples, streams text out, ends when due. */
static void advance(slot *s, float *logits) {
    int32_t id = awq_sampler_sample(s->smp, logits, S.info.vocab_size);
    s->n_gen++;
    if (!s->req->q.ignore_eos && awq_tokenizer_is_eog(S.tok, id)) {
        s->n_gen--; /* the end-of-turn token is not part of the answer */
        finish(s, "stop");
        return;
    }
    char piece[256];
    size_t n = 0;
    const char *out = NULL;
    size_t out_len = 0;
    bool stopped = false;
    if (awq_detok_push(s->dt, id, piece, sizeof piece, &n) == AWQ_OK && n)
        awq_stop_push(s->stop, piece, n, &out, &out_len, &stopped);
    if (out_len) {
        pthread_mutex_lock(&S.mu);
        req_append(s->req, out, out_len);
        pthread_mutex_unlock(&S.mu);
    }
    if (stopped)
        finish(s, "stop");
    else if (s->n_gen >= s->max_gen || awq_session_n_past(s->sess) >= S.n_ctx)
        finish(s, "length");
    else
        s->next = id;
}

/* Puts a waiting request into a free slot and runs its prompt. */
static void admit(slot *s, request *r, float *logits) {
    s->req = r;
    s->n_gen = 0;
    int64_t room = S.n_ctx - r->n_ids;
    s->max_gen = r->q.max_tokens >= 0 && r->q.max_tokens < room ? r->q.max_tokens : room;
    awq_session_reset(s->sess);
    awq_status st = awq_sampler_create(&s->smp, &r->q.sp);
    if (st == AWQ_OK) st = awq_detok_create(&s->dt, S.tok, true);
    if (st == AWQ_OK) st = awq_stop_create(&s->stop, (const char *const *)r->q.stops, r->q.n_stops);
    if (st == AWQ_OK) st = awq_session_eval(s->sess, r->ids, r->n_ids, logits, false);
    pthread_mutex_lock(&S.mu);
    r->prompt_tokens = r->n_ids;
    if (st != AWQ_OK) {
        r->state = REQ_FAILED;
        r->http_status = 500;
        snprintf(r->err, sizeof r->err, "%s", awq_runtime_last_error(S.rt));
        pthread_cond_broadcast(&r->cond);
    } else {
        r->state = REQ_RUNNING;
    }
    pthread_mutex_unlock(&S.mu);
    if (st != AWQ_OK) {
        slot_free(s);
        return;
    }
    slog("req %lld: slot %d, prompt %d tokens (waited %.2f s)", (long long)r->id, s->index, r->n_ids,
         now_s() - r->t0);
    if (s->max_gen == 0)
        finish(s, "length");
    else
        advance(s, logits);
}

static void log_stats(bool force) {
    double t = now_s();
    if (!force && t - S.t_stats < 2.0) return;
    if (S.steps > 0)
        slog("decode: %lld steps, %lld tokens (batch mean %.2f, max %lld) in %.1f s of decoding, %.1f tok/s",
             (long long)S.steps, (long long)S.step_tokens, (double)S.step_tokens / (double)S.steps,
             (long long)S.step_max, S.t_busy, (double)S.step_tokens / (S.t_busy > 0 ? S.t_busy : 1e-9));
    S.steps = S.step_tokens = S.step_max = 0;
    S.t_busy = 0;
    S.t_stats = t;
}

static void *scheduler(void *arg) {
    (void)arg;
    int32_t vocab = S.info.vocab_size;
    float *logits = malloc((size_t)S.n_slots * (size_t)vocab * sizeof(float));
    awq_session **bs = calloc((size_t)S.n_slots, sizeof *bs);
    int32_t *bt = calloc((size_t)S.n_slots, sizeof *bt);
    slot **who = calloc((size_t)S.n_slots, sizeof *who);
    request *wait_head = NULL, *wait_tail = NULL; /* FIFO of tokenized requests */
    if (!logits || !bs || !bt || !who) {
        slog("out of memory for the scheduler");
        pthread_mutex_lock(&S.mu);
        S.stopping = true;
        pthread_mutex_unlock(&S.mu);
    }
    S.t_stats = now_s();
    for (;;) {
        pthread_mutex_lock(&S.mu);
        bool busy = false;
        for (int i = 0; i < S.n_slots; i++) busy |= S.slots[i].req != NULL;
        while (!S.stopping && !S.incoming && !busy && !wait_head) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&S.work, &S.mu, &ts);
        }
        request *in = S.incoming;
        S.incoming = NULL;
        bool stopping = S.stopping;
        pthread_mutex_unlock(&S.mu);
        // new requests, oldest first
        request *rev = NULL;
        while (in) {
            request *nx = in->next;
            in->next = rev;
            rev = in;
            in = nx;
        }
        for (request *r = rev, *nx; r; r = nx) {
            nx = r->next;
            r->next = NULL;
            bool ok = !stopping && prepare(r);
            pthread_mutex_lock(&S.mu);
            if (!ok) {
                if (stopping) snprintf(r->err, sizeof r->err, "the server is shutting down");
                r->state = REQ_FAILED;
                r->http_status = stopping ? 503 : 400;
                S.n_queued--;
                pthread_cond_broadcast(&r->cond);
                req_release(r);
            } else {
                r->state = REQ_WAITING;
                pthread_cond_broadcast(&r->cond);
            }
            pthread_mutex_unlock(&S.mu);
            if (ok) {
                if (wait_tail)
                    wait_tail->next = r;
                else
                    wait_head = r;
                wait_tail = r;
            }
        }
        // requests whose client left, and everything when stopping
        pthread_mutex_lock(&S.mu);
        for (request **pp = &wait_head; *pp;) {
            request *r = *pp;
            if (r->cancelled || stopping) {
                *pp = r->next;
                if (stopping && !r->cancelled) {
                    r->state = REQ_FAILED;
                    r->http_status = 503;
                    snprintf(r->err, sizeof r->err, "the server is shutting down");
                    pthread_cond_broadcast(&r->cond);
                } else {
                    slog("req %lld: client left while waiting", (long long)r->id);
                }
                S.n_queued--;
                req_release(r);
            } else {
                pp = &r->next;
            }
        }
        wait_tail = NULL;
        for (request *r = wait_head; r; r = r->next) wait_tail = r;
        bool cancel[1024] = {false};
        for (int i = 0; i < S.n_slots && i < 1024; i++)
            if (S.slots[i].req) cancel[i] = S.slots[i].req->cancelled || stopping;
        pthread_mutex_unlock(&S.mu);
        for (int i = 0; i < S.n_slots; i++) {
            slot *s = &S.slots[i];
            if (!s->req || !cancel[i]) continue;
            slog("req %lld: %s after %lld tokens; slot %d freed", (long long)s->req->id,
                 stopping ? "server stopping" : "client disconnected", (long long)s->n_gen, i);
            if (stopping) {
                pthread_mutex_lock(&S.mu);
                s->req->finish = "length";
                s->req->completion_tokens = (int32_t)s->n_gen;
                s->req->state = REQ_DONE;
                pthread_cond_broadcast(&s->req->cond);
                pthread_mutex_unlock(&S.mu);
            }
            slot_free(s);
        }
        if (stopping) break;
        // admit waiting requests into free slots
        for (int i = 0; i < S.n_slots && wait_head; i++) {
            if (S.slots[i].req) continue;
            request *r = wait_head;
            wait_head = r->next;
            if (!wait_head) wait_tail = NULL;
            r->next = NULL;
            pthread_mutex_lock(&S.mu);
            S.n_queued--;
            pthread_mutex_unlock(&S.mu);
            admit(&S.slots[i], r, logits);
        }
        // one batched decoding step over every active slot
        int nb = 0;
        for (int i = 0; i < S.n_slots; i++) {
            if (!S.slots[i].req) continue;
            who[nb] = &S.slots[i];
            bs[nb] = S.slots[i].sess;
            bt[nb++] = S.slots[i].next;
        }
        if (nb > 0) {
            double ts = now_s();
            awq_status st = awq_session_decode_batch(bs, nb, bt, logits);
            S.t_busy += now_s() - ts;
            if (cli_verbosity > 0) {
                char ids[256] = "";
                size_t o = 0;
                for (int b = 0; b < nb && o + 8 < sizeof ids; b++)
                    o += (size_t)snprintf(ids + o, sizeof ids - o, " %d", who[b]->index);
                slog("step: batch of %d (slots%s)", nb, ids);
            }
            S.steps++;
            S.step_tokens += nb;
            if (nb > S.step_max) S.step_max = nb;
            for (int b = 0; b < nb; b++) {
                slot *s = who[b];
                if (st == AWQ_OK) {
                    advance(s, logits + (size_t)b * (size_t)vocab);
                    continue;
                }
                pthread_mutex_lock(&S.mu);
                s->req->state = REQ_FAILED;
                s->req->http_status = 500;
                snprintf(s->req->err, sizeof s->req->err, "decoding failed: %s",
                         awq_runtime_last_error(S.rt));
                pthread_cond_broadcast(&s->req->cond);
                pthread_mutex_unlock(&S.mu);
                slot_free(s);
            }
        }
        log_stats(nb == 0);
    }
    log_stats(true);
    free(logits);
    free(bs);
    free(bt);
    free(who);
    return NULL;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    bool too_large;
} conn_ctx;

/* Streaming state of one SSE response (owned by MHD through the reader's free callback). */
typedef struct stream_ctx {
    request *r;
    size_t sent; /* bytes of r->text already sent */
    bool first;  /* the role chunk is still due (chat) */
    bool ended;  /* [DONE] queued */
    char *pend;  /* formatted bytes not yet handed to MHD */
    size_t pend_len, pend_off;
} stream_ctx;

static void stream_add(stream_ctx *s, cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return;
    size_t n = strlen(t);
    char *p = realloc(s->pend, s->pend_len + n + 9);
    if (p) {
        s->pend = p;
        memcpy(p + s->pend_len, "data: ", 6);
        memcpy(p + s->pend_len + 6, t, n);
        memcpy(p + s->pend_len + 6 + n, "\n\n", 2);
        s->pend_len += n + 8;
    }
    free(t);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_ctx *s = cls;
    request *r = s->r;
    for (;;) {
        if (s->pend_off < s->pend_len) {
            size_t n = s->pend_len - s->pend_off < max ? s->pend_len - s->pend_off : max;
            memcpy(buf, s->pend + s->pend_off, n);
            s->pend_off += n;
            return (ssize_t)n;
        }
        s->pend_len = s->pend_off = 0;
        if (s->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&S.mu);
        while (s->sent == r->len && r->state != REQ_DONE && r->state != REQ_FAILED && !S.stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cond, &S.mu, &ts);
            if (client_gone(r->fd)) {
                r->cancelled = true;
                pthread_cond_signal(&S.work);
                pthread_mutex_unlock(&S.mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        if (s->first && r->q.chat) {
            stream_add(s, completion_json(r, true, NULL, 0, true, NULL));
            s->first = false;
        }
        if (s->sent < r->len) {
            stream_add(s, completion_json(r, true, r->text + s->sent, r->len - s->sent, false, NULL));
            s->sent = r->len;
        } else if (r->state == REQ_DONE || r->state == REQ_FAILED || S.stopping) {
            if (r->state == REQ_FAILED) {
                cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
                cJSON_AddStringToObject(e, "message", r->err);
                cJSON_AddStringToObject(e, "type", "server_error");
                stream_add(s, j);
            } else {
                stream_add(s, completion_json(r, true, NULL, 0, false, r->finish ? r->finish : "length"));
                if (r->q.include_usage) {
                    cJSON *j = completion_json(r, true, NULL, 0, false, NULL);
                    cJSON_AddItemToObject(j, "usage", usage_json(r));
                    stream_add(s, j);
                }
            }
            size_t n = strlen("data: [DONE]\n\n");
            char *p = realloc(s->pend, s->pend_len + n);
            if (p) {
                s->pend = p;
                memcpy(p + s->pend_len, "data: [DONE]\n\n", n);
                s->pend_len += n;
            }
            s->ended = true;
        }
        pthread_mutex_unlock(&S.mu);
    }
}

static void stream_free(void *cls) {
    stream_ctx *s = cls;
    pthread_mutex_lock(&S.mu);
    if (s->r->state != REQ_DONE && s->r->state != REQ_FAILED) {
        s->r->cancelled = true;
        pthread_cond_signal(&S.work);
    }
    slog("req %lld: stream closed (%s)", (long long)s->r->id, s->ended ? "complete" : "client hung up");
    req_release(s->r);
    pthread_mutex_unlock(&S.mu);
    free(s->pend);
    free(s);
}

static bool authorized(struct MHD_Connection *c) {
    if (!S.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    const char *k = h + 7;
    size_t a = strlen(k), b = strlen(S.api_key);
    unsigned diff = (unsigned)(a != b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned)(k[i] ^ S.api_key[i % (b ? b : 1)]);
    return diff == 0;
}

static enum MHD_Result handle_models(struct MHD_Connection *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(j, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", S.alias);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)S.created);
    cJSON_AddStringToObject(m, "owned_by", "awq");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", S.info.arch);
    cJSON_AddStringToObject(meta, "device", S.info.device);
    cJSON_AddBoolToObject(meta, "quantized", S.info.quantized);
    cJSON_AddNumberToObject(meta, "group_size", S.info.group_size);
    cJSON_AddNumberToObject(meta, "n_ctx_slot", S.n_ctx);
    cJSON_AddNumberToObject(meta, "parallel", S.n_slots);
    cJSON_AddItemToArray(d, m);
    return send_json(c, MHD_HTTP_OK, j);
}

static enum MHD_Result handle_completion(struct MHD_Connection *c, bool chat, conn_ctx *cc) {
    cJSON *body = cJSON_ParseWithLength(cc->body ? cc->body : "", cc->len);
    if (!body)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", NULL, NULL,
                          "the request body is not valid JSON");
    request *r = calloc(1, sizeof *r);
    if (!r) {
        cJSON_Delete(body);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, NULL, "out of memory");
    }
    pthread_mutex_lock(&S.mu);
    r->id = ++S.next_id;
    pthread_mutex_unlock(&S.mu);
    serve_req_init(&r->q, chat);
    r->refs = 1;
    r->t0 = now_s();
    pthread_cond_init(&r->cond, NULL);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    serve_err e = {{0}, NULL};
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)r->id * 0x9e3779b97f4a7c15ull);
    bool ok = serve_parse_request(body, seed, &r->q, &e);
    cJSON_Delete(body);
    if (!ok) {
        pthread_mutex_lock(&S.mu);
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", e.param, NULL, "%s", e.msg);
    }
    // hand it to the scheduler
    pthread_mutex_lock(&S.mu);
    if (S.stopping || S.n_queued >= MAX_QUEUE) {
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL, NULL,
                          "the server is busy (%d requests queued); try again later", MAX_QUEUE);
    }
    r->refs = 2;
    r->next = S.incoming;
    S.incoming = r;
    S.n_queued++;
    pthread_cond_signal(&S.work);
    slog("req %lld: POST %s%s", (long long)r->id, chat ? "/v1/chat/completions" : "/v1/completions",
         r->q.stream ? " (stream)" : "");
    // wait until it is tokenized (errors are known then), and for non-streaming until done
    bool gone = false;
    while (!gone &&
           (r->state == REQ_NEW || (!r->q.stream && r->state != REQ_DONE && r->state != REQ_FAILED))) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cond, &S.mu, &ts);
        if (client_gone(r->fd)) gone = true;
    }
    if (gone) {
        r->cancelled = true;
        pthread_cond_signal(&S.work);
        slog("req %lld: client hung up", (long long)r->id);
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return MHD_NO; /* close the connection */
    }
    if (r->state == REQ_FAILED) {
        int status = r->http_status;
        char msg[sizeof r->err];
        snprintf(msg, sizeof msg, "%s", r->err);
        const char *param = r->err_param, *code = r->err_code;
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return send_error(c, (unsigned)status, status >= 500 ? "server_error" : "invalid_request_error",
                          param, code, "%s", msg);
    }
    if (!r->q.stream) {
        cJSON *j = completion_json(r, false, r->text ? r->text : "", r->len, false, r->finish);
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return send_json(c, MHD_HTTP_OK, j);
    }
    pthread_mutex_unlock(&S.mu);
    stream_ctx *s = calloc(1, sizeof *s);
    struct MHD_Response *resp =
        s ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free) : NULL;
    if (!resp) {
        free(s);
        pthread_mutex_lock(&S.mu);
        r->cancelled = true;
        req_release(r);
        pthread_mutex_unlock(&S.mu);
        return MHD_NO;
    }
    s->r = r;
    s->first = true;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls) {
    (void)cls;
    (void)version;
    conn_ctx *cc = *con_cls;
    bool post = !strcmp(method, "POST");
    bool chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    bool compl = !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
    if (!cc) { // first call: headers only
        if (!strcmp(url, "/health")) {
            if (strcmp(method, "GET"))
                return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                                  "%s %s: use GET", method, url);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "status", "ok");
            return send_json(c, MHD_HTTP_OK, j);
        }
        if (!strncmp(url, "/v1/", 4) && !authorized(c))
            return send_error(c, MHD_HTTP_UNAUTHORIZED, "invalid_request_error", NULL, "invalid_api_key",
                              "invalid or missing API key (Authorization: Bearer KEY)");
        if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) {
            if (strcmp(method, "GET"))
                return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                                  "%s %s: use GET", method, url);
            return handle_models(c);
        }
        if (!chat && !compl )
            return send_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error", NULL, NULL,
                              "no such endpoint: %s %s", method, url);
        if (!post)
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", NULL, NULL,
                              "%s %s: use POST", method, url);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > S.max_body)
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", NULL, NULL,
                              "the request body (%s bytes) exceeds the limit of %zu bytes (--max-body)", cl,
                              S.max_body);
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        *con_cls = cc;
        return MHD_YES;
    }
    if (*upload_size > 0) { // body data
        if (!cc->too_large && cc->len + *upload_size > S.max_body) {
            cc->too_large = true;
            free(cc->body);
            cc->body = NULL;
            cc->len = cc->cap = 0;
        }
        if (!cc->too_large) {
            if (cc->len + *upload_size > cc->cap) {
                size_t cap = cc->cap ? cc->cap : 4096;
                while (cap < cc->len + *upload_size) cap *= 2;
                char *b = realloc(cc->body, cap);
                if (!b) return MHD_NO;
                cc->body = b;
                cc->cap = cap;
            }
            memcpy(cc->body + cc->len, upload, *upload_size);
            cc->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->too_large)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", NULL, NULL,
                          "the request body exceeds the limit of %zu bytes (--max-body)", S.max_body);
    return handle_completion(c, chat, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    conn_ctx *cc = *con_cls;
    if (cc) {
        free(cc->body);
        free(cc);
        *con_cls = NULL;
    }
}

/* ---- the command ------------------------------------------------------------------------- */

int cmd_serve(int argc, char **argv) {
    const char *dir = NULL, *backend = "auto", *host = "127.0.0.1", *alias = NULL;
    awq_lm_head_format lm_head = AWQ_LM_HEAD_AS_STORED;
    const char *api_key = getenv("AWQ_API_KEY");
    int64_t port = 8080, parallel = 4, ctx = 0, threads = 0, max_body = 4 << 20;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "serve"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_opt(&a, NULL, "--host", &host)) {
        } else if (cli_opt(&a, NULL, "--alias", &alias)) {
        } else if (cli_opt(&a, NULL, "--api-key", &api_key)) {
        } else if (cli_opt(&a, NULL, "--backend", &backend)) {
        } else if (cli_opt_lm_head(&a, &lm_head)) {
        } else if (cli_opt_int(&a, NULL, "--port", 0, 65535, &port)) {
        } else if (cli_opt_int(&a, "-np", "--parallel", 1, 256, &parallel)) {
        } else if (cli_opt_int(&a, "-c", "--ctx-size", 0, 1 << 22, &ctx)) {
        } else if (cli_opt_int(&a, NULL, "--max-body", 1024, (int64_t)1 << 32, &max_body)) {
        } else if (cli_opt_int(&a, "-t", "--threads", 0, 4096, &threads)) {
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli serve: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!dir)
            dir = argv[a.i];
        else {
            fprintf(stderr, "awq-cli serve: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    if (api_key && !api_key[0]) api_key = NULL;

    // the address first: a typo should not wait for the model to load
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", (int)port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "awq-cli serve: --host %s: %s\n", host, gai_strerror(gai));
        return 2;
    }

    int rc = 1;
    awq_status st;
    memset(&S, 0, sizeof S);
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.work, NULL);
    S.api_key = api_key;
    S.max_body = (size_t)max_body;
    S.created = time(NULL);
    struct MHD_Daemon *d = NULL;
    pthread_t th;
    bool th_started = false;
    S.rt = cli_runtime((int)threads);
    if (!S.rt) goto out;
    if ((st = awq_tokenizer_load(&S.tok, S.rt, dir)) != AWQ_OK) {
        rc = cli_fail(S.rt, "serve", st);
        goto out;
    }
    awq_model_params mp = awq_model_params_default();
    mp.device = backend;
    mp.lm_head = lm_head;
    if ((st = awq_model_load(&S.model, S.rt, dir, &mp)) != AWQ_OK) {
        rc = cli_fail(S.rt, "serve", st);
        goto out;
    }
    awq_model_get_info(S.model, &S.info);
    S.n_ctx = ctx > 0 ? (int32_t)ctx : (S.info.max_ctx < 4096 ? S.info.max_ctx : 4096);
    if (alias) {
        S.alias = alias;
    } else {
        const char *b = dir + strlen(dir);
        while (b > dir && b[-1] == '/') b--;
        const char *e = b;
        while (b > dir && b[-1] != '/') b--;
        static char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
        S.alias = name[0] ? name : dir;
    }
    S.n_slots = (int)parallel;
    S.slots = calloc((size_t)S.n_slots, sizeof *S.slots);
    if (!S.slots) goto out;
    for (int i = 0; i < S.n_slots; i++) {
        S.slots[i].index = i;
        if ((st = awq_session_create(&S.slots[i].sess, S.model, S.n_ctx)) != AWQ_OK) {
            rc = cli_fail(S.rt, "serve", st);
            goto out;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    cli_catch_signals();
    if (pthread_create(&th, NULL, scheduler, NULL) != 0) goto out;
    th_started = true;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                         ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(64 + 4 * parallel),
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "awq-cli serve: cannot listen on %s port %d: %s\n", host, (int)port,
                errno ? strerror(errno) : "libmicrohttpd refused");
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = di ? di->port : (int)port;
    slog("listening on http://%s%s%s:%d  model %s (%s on %s), %d slots of %d tokens%s",
         ai->ai_family == AF_INET6 ? "[" : "", host, ai->ai_family == AF_INET6 ? "]" : "", bound, S.alias,
         S.info.quantized ? "AWQ 4-bit" : "fp", S.info.device, S.n_slots, S.n_ctx,
         S.api_key ? ", API key required" : "");
    while (!cli_interrupted()) usleep(100 * 1000);
    slog("stopping");
    rc = 0;
out:
    if (ai) freeaddrinfo(ai);
    pthread_mutex_lock(&S.mu);
    S.stopping = true;
    pthread_cond_broadcast(&S.work);
    pthread_mutex_unlock(&S.mu);
    if (th_started) pthread_join(th, NULL);
    // wake handlers still waiting on requests the scheduler never saw
    pthread_mutex_lock(&S.mu);
    for (request *r = S.incoming, *nx; r; r = nx) {
        nx = r->next;
        r->state = REQ_FAILED;
        r->http_status = 503;
        snprintf(r->err, sizeof r->err, "the server is shutting down");
        pthread_cond_broadcast(&r->cond);
        req_release(r);
    }
    S.incoming = NULL;
    pthread_mutex_unlock(&S.mu);
    if (d) MHD_stop_daemon(d);
    for (int i = 0; S.slots && i < S.n_slots; i++) awq_session_destroy(S.slots[i].sess);
    free(S.slots);
    awq_model_destroy(S.model);
    awq_tokenizer_destroy(S.tok);
    awq_runtime_destroy(S.rt);
    return rc;
}
