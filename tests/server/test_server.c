/*
 * test_server.c - `awq-cli serve` driven by real clients on a loopback port: curl (chat and
 * completion, streaming and not, greedy output equal to `awq-cli generate`), a bounded load test
 * (32 requests from 8 concurrent clients with --parallel 4: all complete and equal their
 * sequential greedy results; the log shows batched steps), bad requests (each answered with the
 * right status while the server keeps serving), a client hanging up mid-stream, and a clean stop
 * on SIGINT. With --openai (a second ctest entry) it runs tests/server/openai_client.py, the
 * official `openai` Python client; that one skips when the package is missing, unless
 * AWQ_REQUIRE_SERVER_TOOLS=1.
 *
 * The model: SmolLM2 quantized here to the AWQ 4-bit format with round-to-nearest (g64, ~3 s;
 * the same W4A16 inference path as an AWQ-searched checkpoint). AWQ_SERVER_MODEL overrides it.
 * Environment: AWQ_TEST_MODEL_DIR, AWQ_SERVER_BACKEND (default cpu).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "awq.h"
#include "test.h"

#define KEY     "test-key-7f3a9c"
#define NTOK    24
#define NPROMPT 8

static char cli[1024], root[256], model[320], logpath[320];
static const char *backend = "cpu";
static pid_t server = -1;
static int port;
static bool skipped;

/* Runs a shell command line; stdout (and stderr when merge) into out; returns the exit code. */
static int run(const char *cmdline, bool merge, char *out, size_t cap) {
    char full[8192];
    snprintf(full, sizeof full, "%s%s", cmdline, merge ? " 2>&1" : " 2>/dev/null");
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A JSON string literal for s (static buffer per call site). */
static void json_str(char *dst, size_t cap, const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *t = cJSON_PrintUnformatted(j);
    snprintf(dst, cap, "%s", t);
    free(t);
    cJSON_Delete(j);
}

/* POSTs body to path with curl (or GETs when body is NULL); response body into out; returns the
 * HTTP status (0 if curl failed). extra: more curl arguments (may be ""). */
static int http(const char *path, const char *body, const char *extra, char *out, size_t cap) {
    static int counter = 0;
    char bf[400], of[400], cmd[2048];
    int k = __sync_fetch_and_add(&counter, 1);
    snprintf(bf, sizeof bf, "%s/body-%d-%d.json", root, (int)getpid(), k);
    snprintf(of, sizeof of, "%s/resp-%d-%d.txt", root, (int)getpid(), k);
    if (body && !write_file(bf, body, strlen(body))) return 0;
    snprintf(cmd, sizeof cmd,
             "curl -s -N --max-time 300 -o %s -w '%%{http_code}' -H 'Content-Type: application/json' %s %s%s "
             "http://127.0.0.1:%d%s",
             of, extra, body ? "--data-binary @" : "", body ? bf : "", port, path);
    char code[64];
    run(cmd, false, code, sizeof code);
    size_t n = 0;
    char *r = test_read_file(of, &n);
    out[0] = '\0';
    if (r) {
        snprintf(out, cap, "%s", r);
        free(r);
    }
    unlink(bf);
    unlink(of);
    return atoi(code);
}

#define AUTH "-H 'Authorization: Bearer " KEY "'"

/* The text of a completion response: non-streaming JSON, or server-sent events concatenated.
 * Returns a malloc'd string or NULL; *finish gets the finish_reason. */
static char *response_text(const char *resp, bool chat, char *finish, size_t fcap) {
    finish[0] = '\0';
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    const char *p = resp;
    bool sse = !strncmp(resp, "data: ", 6);
    while (p && *p) {
        const char *json = p;
        const char *eol = NULL;
        if (sse) {
            if (strncmp(p, "data: ", 6)) {
                p = strchr(p, '\n');
                if (p) p++;
                continue;
            }
            json = p + 6;
            eol = strchr(json, '\n');
            if (!strncmp(json, "[DONE]", 6)) break;
        }
        cJSON *j = eol ? cJSON_ParseWithLength(json, (size_t)(eol - json)) : cJSON_Parse(json);
        if (!j) {
            free(out);
            return NULL;
        }
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        if (ch) {
            cJSON *t = chat
                ? cJSON_GetObjectItem(cJSON_GetObjectItem(ch, sse ? "delta" : "message"), "content")
                : cJSON_GetObjectItem(ch, "text");
            if (cJSON_IsString(t)) {
                size_t n = strlen(t->valuestring);
                if (len + n + 1 > cap) out = realloc(out, cap = 2 * (len + n + 1));
                memcpy(out + len, t->valuestring, n + 1);
                len += n;
            }
            cJSON *f = cJSON_GetObjectItem(ch, "finish_reason");
            if (cJSON_IsString(f)) snprintf(finish, fcap, "%s", f->valuestring);
        }
        cJSON_Delete(j);
        if (!sse) break;
        p = eol ? eol + 1 : NULL;
    }
    return out;
}

static const char *prompts[NPROMPT] = {
    "The capital of France is",
    "What is the largest planet in the solar system?",
    "Once upon a time, there was a little robot who",
    "Write a haiku about the sea.",
    "def add(a, b):",
    "Name three colors.",
    "The best way to learn a language is",
    "Why is the sky blue?",
};
static bool is_chat(int i) { return i % 2 == 1; }

/* Request body for prompt i (chat for odd i), greedy, NTOK tokens. */
static void body_for(int i, bool stream, char *dst, size_t cap) {
    char s[512];
    json_str(s, sizeof s, prompts[i]);
    if (is_chat(i))
        snprintf(dst, cap,
                 "{\"model\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": %s}], "
                 "\"max_tokens\": %d, \"temperature\": 0, \"stream\": %s}",
                 s, NTOK, stream ? "true" : "false");
    else
        snprintf(dst, cap,
                 "{\"model\": \"x\", \"prompt\": %s, \"max_tokens\": %d, \"temperature\": 0, "
                 "\"stream\": %s}",
                 s, NTOK, stream ? "true" : "false");
}

/* `awq-cli generate` of prompt i, greedy, NTOK tokens: the generated text. */
static char *generate(int i) {
    char cmd[2048], q[600], *out = malloc(1 << 16);
    snprintf(q, sizeof q, "%s", prompts[i]);
    for (char *c = q; *c; c++)
        if (*c == '\'') *c = ' ';
    snprintf(cmd, sizeof cmd, "%s generate %s -p '%s' -n %d --temp 0 --backend %s -t 2 %s", cli, model, q,
             NTOK, backend, is_chat(i) ? "--chat" : "");
    if (run(cmd, false, out, 1 << 16) != 0) {
        free(out);
        return NULL;
    }
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[--n] = '\0'; /* generate ends with a newline */
    if (!is_chat(i)) {                            /* and echoes the prompt first */
        size_t pl = strlen(prompts[i]);
        if (strncmp(out, prompts[i], pl)) {
            free(out);
            return NULL;
        }
        memmove(out, out + pl, n - pl + 1);
    }
    return out;
}

static char *ref[NPROMPT]; /* generate's output per prompt */
static char buf[1 << 20];

static bool log_has(const char *needle) {
    char *l = test_read_file(logpath, NULL);
    bool r = l && strstr(l, needle);
    free(l);
    return r;
}

static bool wait_log(const char *needle, double seconds) {
    for (double t = 0; t < seconds; t += 0.1) {
        if (log_has(needle)) return true;
        usleep(100000);
    }
    return false;
}

static bool start_server(void) {
    snprintf(logpath, sizeof logpath, "%s/server.log", root);
    server = fork();
    if (server == 0) {
        FILE *f = freopen(logpath, "w", stderr);
        (void)f;
        dup2(2, 1);
        execl(cli, cli, "serve", model, "--port", "0", "--parallel", "4", "--ctx-size", "512", "--backend",
              backend, "--api-key", KEY, "-t", "2", "-v", (char *)NULL);
        _exit(127);
    }
    if (!wait_log("listening on http://127.0.0.1:", 120)) return false;
    char *l = test_read_file(logpath, NULL);
    const char *p = strstr(l, "listening on http://127.0.0.1:");
    port = atoi(p + strlen("listening on http://127.0.0.1:"));
    free(l);
    printf("  server pid %d on port %d\n", (int)server, port);
    return port > 0;
}

TEST(curl_completion_and_chat_equal_generate) {
    for (int i = 0; i < 2; i++) { // prompt 0 (completion) and 1 (chat), streaming and not
        ASSERT_MSG(ref[i], "awq-cli generate failed for prompt %d", i);
        for (int stream = 0; stream < 2; stream++) {
            char body[2048], fin[32];
            body_for(i, stream, body, sizeof body);
            int code =
                http(is_chat(i) ? "/v1/chat/completions" : "/v1/completions", body, AUTH, buf, sizeof buf);
            ASSERT_EQ(code, 200);
            char *t = response_text(buf, is_chat(i), fin, sizeof fin);
            ASSERT_MSG(t, "unparseable response: %.300s", buf);
            printf("  %s%s: \"%s\" (%s)\n", is_chat(i) ? "chat" : "completion", stream ? " stream" : "", t,
                   fin);
            bool same = !strcmp(t, ref[i]);
            if (!same) printf("  generate: \"%s\"\n", ref[i]);
            free(t);
            ASSERT(same);
            ASSERT(!strcmp(fin, "stop") || !strcmp(fin, "length"));
            if (!stream) {
                cJSON *j = cJSON_Parse(buf);
                cJSON *u = cJSON_GetObjectItem(j, "usage");
                ASSERT(u && cJSON_GetObjectItem(u, "prompt_tokens")->valueint > 0);
                ASSERT(cJSON_GetObjectItem(u, "completion_tokens")->valueint <= NTOK);
                cJSON_Delete(j);
            }
        }
    }
    ASSERT_EQ(http("/v1/models", NULL, AUTH, buf, sizeof buf), 200);
    ASSERT(strstr(buf, "\"object\":\"list\""));
    ASSERT_EQ(http("/health", NULL, "", buf, sizeof buf), 200);
}

TEST(load_32_requests_8_clients) {
    // the sequential greedy result of each prompt through the server, one request at a time
    char *seq[NPROMPT] = {0};
    for (int i = 0; i < NPROMPT; i++) {
        char body[2048], fin[32];
        body_for(i, false, body, sizeof body);
        ASSERT_EQ(http(is_chat(i) ? "/v1/chat/completions" : "/v1/completions", body, AUTH, buf, sizeof buf),
                  200);
        seq[i] = response_text(buf, is_chat(i), fin, sizeof fin);
        ASSERT(seq[i]);
    }
    // 8 clients x 4 requests, every other one streaming
    double t0 = (double)time(NULL);
    pid_t kids[8];
    for (int c = 0; c < 8; c++) {
        if ((kids[c] = fork()) == 0) {
            int bad = 0;
            for (int j = 0; j < 4; j++) {
                int i = (c * 4 + j) % NPROMPT;
                char body[2048], fin[32], path[400];
                body_for(i, j % 2, body, sizeof body);
                int code = http(is_chat(i) ? "/v1/chat/completions" : "/v1/completions", body, AUTH, buf,
                                sizeof buf);
                char *t = code == 200 ? response_text(buf, is_chat(i), fin, sizeof fin) : NULL;
                snprintf(path, sizeof path, "%s/load-%d-%d.txt", root, c, j);
                if (!t || !write_file(path, t, strlen(t))) bad++;
                free(t);
            }
            _exit(bad);
        }
    }
    int failed_clients = 0;
    for (int c = 0; c < 8; c++) {
        int st = 0;
        for (int w = 0; w < 3000 && waitpid(kids[c], &st, WNOHANG) == 0; w++) usleep(100000);
        if (waitpid(kids[c], &st, WNOHANG) == 0) {
            kill(kids[c], SIGKILL);
            waitpid(kids[c], &st, 0);
        }
        failed_clients += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    double secs = (double)time(NULL) - t0;
    int done = 0, equal = 0;
    for (int c = 0; c < 8; c++)
        for (int j = 0; j < 4; j++) {
            char path[400];
            snprintf(path, sizeof path, "%s/load-%d-%d.txt", root, c, j);
            char *t = test_read_file(path, NULL);
            if (!t) continue;
            done++;
            int i = (c * 4 + j) % NPROMPT;
            if (!strcmp(t, seq[i]))
                equal++;
            else
                printf("  client %d request %d differs: \"%s\" vs \"%s\"\n", c, j, t, seq[i]);
            free(t);
        }
    printf(
        "  32 requests from 8 clients in ~%.0f s: %d completed, %d equal to the sequential greedy result\n",
        secs, done, equal);
    for (int i = 0; i < NPROMPT; i++) free(seq[i]);
    ASSERT_EQ(failed_clients, 0);
    ASSERT_EQ(done, 32);
    ASSERT_EQ(equal, 32);
    ASSERT_MSG(log_has("step: batch of 4"), "no decoding step with 4 sequences in %s", logpath);
    ASSERT(log_has("max 4)"));
}

/* Sends a raw HTTP request and returns the connected socket (-1 on failure). */
static int raw_request(const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " KEY "\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

TEST(bad_requests_and_hangups) {
    const char *chat = "/v1/chat/completions", *compl = "/v1/completions";
    struct {
        const char *what, *path, *body, *extra;
        int code;
        const char *in_body;
    } cases[] = {
        {"malformed JSON", chat, "{\"messages\": [", AUTH, 400, "not valid JSON"},
        {"messages not an array", chat, "{\"messages\": \"hi\"}", AUTH, 400, "\"param\":\"messages\""},
        {"temperature a string", chat,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}", AUTH, 400,
         "\"param\":\"temperature\""},
        {"max_tokens a string", compl, "{\"prompt\": \"x\", \"max_tokens\": \"5\"}", AUTH, 400,
         "\"param\":\"max_tokens\""},
        {"negative max_tokens", compl, "{\"prompt\": \"x\", \"max_tokens\": -5}", AUTH, 400,
         "\"param\":\"max_tokens\""},
        {"n = 2", compl, "{\"prompt\": \"x\", \"n\": 2}", AUTH, 400, "\"param\":\"n\""},
        {"prompt missing", compl, "{\"max_tokens\": 3}", AUTH, 400, "\"param\":\"prompt\""},
        {"body not an object", compl, "[1, 2]", AUTH, 400, "JSON object"},
        {"wrong API key", compl, "{\"prompt\": \"x\"}", "-H 'Authorization: Bearer nope'", 401,
         "invalid_api_key"},
        {"no API key", compl, "{\"prompt\": \"x\"}", "", 401, "invalid_api_key"},
        {"GET on a POST endpoint", chat, NULL, AUTH, 405, "use POST"},
        {"unknown endpoint", "/v1/embeddings", "{}", AUTH, 404, "no such endpoint"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int code = http(cases[k].path, cases[k].body, cases[k].extra, buf, sizeof buf);
        printf("  %-24s -> %d %.160s\n", cases[k].what, code, buf);
        ASSERT_EQ(code, cases[k].code);
        ASSERT(strstr(buf, "\"error\":{"));
        ASSERT(strstr(buf, cases[k].in_body));
    }
    // a prompt longer than the context (512)
    static char big[1 << 16];
    int o = snprintf(big, sizeof big, "{\"prompt\": \"");
    for (int i = 0; i < 600; i++) o += snprintf(big + o, sizeof big - (size_t)o, "word ");
    snprintf(big + o, sizeof big - (size_t)o, "\"}");
    ASSERT_EQ(http(compl, big, AUTH, buf, sizeof buf), 400);
    ASSERT(strstr(buf, "context_length_exceeded"));
    // a 10 MB body, with Content-Length and chunked
    size_t n10 = 10u << 20;
    char *huge = malloc(n10 + 1);
    memset(huge, 'a', n10);
    memcpy(huge, "{\"prompt\": \"", 12);
    memcpy(huge + n10 - 2, "\"}", 2);
    huge[n10] = '\0';
    int code = http(compl, huge, AUTH, buf, sizeof buf);
    printf("  %-24s -> %d %.160s\n", "10 MB body", code, buf);
    ASSERT_EQ(code, 413);
    code = http(compl, huge, AUTH " -H 'Transfer-Encoding: chunked'", buf, sizeof buf);
    printf("  %-24s -> %d\n", "10 MB body, chunked", code);
    free(huge);
    ASSERT_EQ(code, 413);
    // hang up mid-stream: read three events, close; the slot must be freed. Greedy, so that the answer
    // cannot end after one sampled token (an early end-of-sequence made this flaky)
    int fd = raw_request(compl,
                         "{\"prompt\": \"Tell me a very long story.\", \"max_tokens\": 400, "
                         "\"temperature\": 0, \"stream\": true}");
    ASSERT(fd >= 0);
    char rb[8192];
    size_t got = 0;
    int events = 0;
    for (int tries = 0; tries < 600 && events < 3; tries++) {
        ssize_t r = read(fd, rb + got, sizeof rb - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        rb[got] = '\0';
        events = 0;
        for (const char *p = rb; (p = strstr(p, "data: ")); p += 6) events++;
    }
    close(fd);
    ASSERT_MSG(events >= 3, "stream did not start: %.300s", rb);
    ASSERT_MSG(wait_log("client disconnected after", 20), "the server did not notice the hang-up (%s)",
               logpath);
    // hang up while waiting for a non-streaming answer
    fd = raw_request(compl, "{\"prompt\": \"Count to one thousand:\", \"max_tokens\": 400}");
    ASSERT(fd >= 0);
    usleep(1500 * 1000);
    close(fd);
    ASSERT_MSG(wait_log("client hung up", 20), "the server did not notice the second hang-up (%s)", logpath);
    // still serving, with the same answers
    ASSERT_EQ(http("/health", NULL, "", buf, sizeof buf), 200);
    char body[2048], fin[32];
    body_for(0, false, body, sizeof body);
    ASSERT_EQ(http(compl, body, AUTH, buf, sizeof buf), 200);
    char *t = response_text(buf, false, fin, sizeof fin);
    ASSERT(t && ref[0] && !strcmp(t, ref[0]));
    free(t);
}

TEST(openai_python_client) {
    char cmd[2048];
    char q[600];
    json_str(q, sizeof q, prompts[1]);
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/server/openai_client.py http://127.0.0.1:%d/v1 %s m '%s' '%s' %d",
             AWQ_TEST_SOURCE_DIR, port, KEY, prompts[0], prompts[1], NTOK);
    int rc = run(cmd, false, buf, sizeof buf);
    if (rc == 3 || rc == 127) {
        const char *req = getenv("AWQ_REQUIRE_SERVER_TOOLS");
        ASSERT_MSG(!(req && req[0] == '1'),
                   "python3 or its openai package is missing (AWQ_REQUIRE_SERVER_TOOLS=1)");
        printf("  SKIP: python3 with the openai package not found\n");
        skipped = true;
        return;
    }
    printf("  %s", buf);
    ASSERT_EQ(rc, 0);
    cJSON *j = cJSON_Parse(buf);
    ASSERT(j);
    const char *chat_keys[] = {"chat", "chat_stream"}, *compl_keys[] = {"completion", "completion_stream"};
    for (int k = 0; k < 2; k++) {
        cJSON *v = cJSON_GetObjectItem(j, chat_keys[k]);
        ASSERT(cJSON_IsString(v) && ref[1] && !strcmp(v->valuestring, ref[1]));
        v = cJSON_GetObjectItem(j, compl_keys[k]);
        ASSERT(cJSON_IsString(v) && ref[0] && !strcmp(v->valuestring, ref[0]));
    }
    cJSON *u = cJSON_GetObjectItem(j, "chat_usage"), *us = cJSON_GetObjectItem(j, "chat_stream_usage");
    ASSERT(cJSON_IsArray(u) && cJSON_IsArray(us));
    for (int k = 0; k < 3; k++)
        ASSERT_EQ(cJSON_GetArrayItem(u, k)->valueint, cJSON_GetArrayItem(us, k)->valueint);
    ASSERT_EQ(cJSON_GetObjectItem(j, "wrong_key")->valueint, 401);
    ASSERT_EQ(cJSON_GetObjectItem(j, "bad_param")->valueint, 400);
    cJSON_Delete(j);
}

TEST(sigint_stops_the_server) {
    ASSERT(server > 0);
    kill(server, SIGINT);
    int st = 0;
    for (int w = 0; w < 300 && waitpid(server, &st, WNOHANG) == 0; w++) usleep(100000);
    if (waitpid(server, &st, WNOHANG) == 0) {
        kill(server, SIGKILL);
        waitpid(server, &st, 0);
        server = -1;
        FAIL_("the server did not stop within 30 s of SIGINT");
    }
    server = -1;
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
}

int main(int argc, char **argv) {
    bool openai = argc > 1 && !strcmp(argv[1], "--openai");
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    if (getenv("AWQ_SERVER_BACKEND")) backend = getenv("AWQ_SERVER_BACKEND");
    if (system("curl --version > /dev/null 2>&1") != 0) {
        const char *req = getenv("AWQ_REQUIRE_SERVER_TOOLS");
        printf("%s: curl not found%s\n", req && req[0] == '1' ? "FAIL" : "SKIP",
               req && req[0] == '1' ? " (AWQ_REQUIRE_SERVER_TOOLS=1)" : "");
        return req && req[0] == '1' ? 1 : 77;
    }
    snprintf(cli, sizeof cli, "%s/awq-cli", AWQ_TEST_BIN_DIR);
    if (test_tmpdir(root, sizeof root, "test-server")) return 1;
    signal(SIGPIPE, SIG_IGN);
    if (getenv("AWQ_SERVER_MODEL")) {
        snprintf(model, sizeof model, "%s", getenv("AWQ_SERVER_MODEL"));
    } else {
        snprintf(model, sizeof model, "%s/rtn-g64", root);
        awq_runtime *rt = NULL;
        awq_runtime_params rp = awq_runtime_params_default();
        awq_quant_params p = awq_quant_params_default();
        p.model_dir = test_model_dir();
        p.out_dir = model;
        p.group_size = 64;
        p.method = AWQ_METHOD_RTN;
        if (awq_runtime_create(&rt, &rp) != AWQ_OK || awq_quantize(rt, &p, NULL) != AWQ_OK) {
            printf("FAIL: quantize: %s\n", rt ? awq_runtime_last_error(rt) : "no runtime");
            return 1;
        }
        awq_runtime_destroy(rt);
    }
    for (int i = 0; i < (openai ? 2 : NPROMPT); i++) ref[i] = generate(i);
    if (!start_server()) {
        printf("FAIL: the server did not start (log %s)\n", logpath);
        char *l = test_read_file(logpath, NULL);
        if (l) printf("%s\n", l);
        free(l);
        if (server > 0) kill(server, SIGKILL);
        return 1;
    }
    if (openai) {
        RUN(openai_python_client);
    } else {
        RUN(curl_completion_and_chat_equal_generate);
        RUN(load_32_requests_8_clients);
        RUN(bad_requests_and_hangups);
    }
    RUN(sigint_stops_the_server);
    if (server > 0) kill(server, SIGKILL);
    if (test_failures_) {
        char *l = test_read_file(logpath, NULL);
        if (l)
            printf("---- server log (last 3000 bytes) ----\n%s\n",
                   strlen(l) > 3000 ? l + strlen(l) - 3000 : l);
        free(l);
    }
    if (test_rmtree(root) != 0) printf("warning: cannot remove %s\n", root);
    for (int i = 0; i < NPROMPT; i++) free(ref[i]);
    return skipped && !test_failures_ ? 77 : TEST_EXIT();
}
