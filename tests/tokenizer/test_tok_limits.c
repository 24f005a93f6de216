/*
 * test_tok_limits.c - a chat template is code from the model's files: every resource it can
 * exhaust is bounded, and each bound ends the render with AWQ_ERR_INVALID_ARG and a message
 * naming it, quickly and without a crash: loop iterations, nesting depth (parser and evaluator),
 * output size, memory, and wall-clock time. Checked with the default limits and with small
 * custom ones (jinja_limits).
 */
#include <time.h>

#include "awq.h"
#include "test.h"
#include "jinja.h"

static awq_runtime *g_rt;

static const awq_chat_message msgs[] = {{"user", "hello"}, {"assistant", "hi"}};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Renders tmpl; returns the status, *secs the time taken. */
static awq_status render(const char *tmpl, const jinja_limits *lim, double *secs, char **out_text) {
    jinja_vars v = {.bos_token = "<s>", .eos_token = "</s>", .limits = lim};
    char *out = NULL;
    double t0 = now();
    awq_status st = awq_jinja_render_chat(g_rt, tmpl, msgs, 2, true, &v, &out);
    if (secs) *secs = now() - t0;
    if (out_text)
        *out_text = out;
    else
        awq_free(out);
    return st;
}

#define EXPECT_LIMIT(tmpl, lim, what, max_s)                                         \
    do {                                                                             \
        double t_;                                                                   \
        awq_status st_ = render((tmpl), (lim), &t_, NULL);                           \
        const char *e_ = awq_runtime_last_error(g_rt);                               \
        printf("  %.3f s: %s\n", t_, e_);                                            \
        ASSERT_EQ(st_, AWQ_ERR_INVALID_ARG);                                         \
        ASSERT_MSG(strstr(e_, (what)) != NULL, "expected '%s' in '%s'", (what), e_); \
        ASSERT_MSG(t_ < (max_s), "took %.2f s", t_);                                 \
    } while (0)

TEST(loop_iterations) {
    /* 10^10 iterations requested: stopped at the default 10^6 */
    EXPECT_LIMIT("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL,
                 "more than 1000000 loop iterations (limit)", 5.0);
    jinja_limits lim = {.max_loop_iterations = 3};
    EXPECT_LIMIT("{% for m in messages %}{% for c in m.content %}{{ c }}{% endfor %}{% endfor %}", &lim,
                 "more than 3 loop iterations", 1.0);
    /* within the limit the same template renders */
    lim.max_loop_iterations = 9; /* 2 messages + 7 characters */
    char *out = NULL;
    ASSERT_OK_RT(render("{% for m in messages %}{% for c in m.content %}{{ c }}{% endfor %}{% endfor %}",
                        &lim, NULL, &out),
                 g_rt);
    ASSERT_STREQ(out, "hellohi");
    awq_free(out);
}

static char *repeat(const char *head, const char *unit, int n, const char *tail) {
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * (size_t)n + tl + 1);
    memcpy(s, head, hl);
    for (int i = 0; i < n; i++) memcpy(s + hl + ul * (size_t)i, unit, ul);
    memcpy(s + hl + ul * (size_t)n, tail, tl + 1);
    return s;
}

TEST(nesting_depth) {
    /* the parser: 5000 nested parentheses and 5000 nested ifs */
    char *t = repeat("{{ ", "(", 5000, "1");
    char *t2 = repeat(t, ")", 5000, " }}");
    double s;
    awq_status st = render(t2, NULL, &s, NULL);
    printf("  %.3f s: %s\n", s, awq_runtime_last_error(g_rt));
    ASSERT_ERR_RT(st, g_rt, AWQ_ERR_UNSUPPORTED, "nested too deeply");
    free(t);
    free(t2);
    t = repeat("", "{% if true %}", 5000, "x");
    t2 = repeat(t, "{% endif %}", 5000, "");
    st = render(t2, NULL, &s, NULL);
    printf("  %.3f s: %s\n", s, awq_runtime_last_error(g_rt));
    ASSERT(st == AWQ_ERR_UNSUPPORTED || st == AWQ_ERR_INVALID_ARG);
    ASSERT(strstr(awq_runtime_last_error(g_rt), "nested too deeply") ||
           strstr(awq_runtime_last_error(g_rt), "depth limit"));
    free(t);
    free(t2);
    /* the evaluator: a filter chain and a sum parse without nesting but evaluate 20000 deep */
    t = repeat("{{ 'A'", "|lower", 20000, " }}");
    EXPECT_LIMIT(t, NULL, "nested deeper than 256 levels (depth limit)", 2.0);
    free(t);
    t = repeat("{{ 1", " + 1", 20000, " }}");
    EXPECT_LIMIT(t, NULL, "depth limit", 2.0);
    free(t);
    /* a small custom limit on ordinary nesting */
    jinja_limits lim = {.max_depth = 8};
    t = repeat("", "{% if true %}", 10, "x");
    t2 = repeat(t, "{% endif %}", 10, "");
    EXPECT_LIMIT(t2, &lim, "nested deeper than 8 levels", 1.0);
    free(t);
    free(t2);
}

TEST(output_size) {
    jinja_limits lim = {.max_output_bytes = 1000};
    EXPECT_LIMIT("{% for i in range(100) %}0123456789abcdefghij{% endfor %}", &lim,
                 "output longer than 1000 bytes (limit)", 1.0);
    /* default: a string doubled 25 times (32 MiB) is more than 16 MiB of output */
    EXPECT_LIMIT("{% set ns = namespace(s='x') %}{% for i in range(25) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}{{ ns.s }}",
                 NULL, "output longer than", 5.0);
    /* a block set renders into a string under the same limit */
    EXPECT_LIMIT("{% set s %}{% for i in range(100) %}0123456789abcdefghij{% endfor %}{% endset %}", &lim,
                 "output longer than 1000 bytes", 1.0);
}

TEST(memory) {
    /* doubling forever: the values, not the output, hit the default 256 MiB */
    EXPECT_LIMIT("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}",
                 NULL, "(memory limit)", 10.0);
    jinja_limits lim = {.max_memory_bytes = 1 << 20};
    EXPECT_LIMIT("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}"
                 "{% endfor %}",
                 &lim, "exceed 1048576 bytes (memory limit)", 5.0);
}

TEST(run_time) {
    jinja_limits lim = {.max_seconds = 0.05, .max_loop_iterations = 1000000000};
    EXPECT_LIMIT("{% for i in range(100000) %}{% for j in range(100000) %}{{ j % 7 }}{% endfor %}"
                 "{% endfor %}",
                 &lim, "rendering took longer than 0.05 s (time limit)", 1.0);
}

int main(void) {
    awq_runtime_params rp = awq_runtime_params_default();
    rp.load_plugins = false;
    if (awq_runtime_create(&g_rt, &rp) != AWQ_OK) return 1;
    RUN(loop_iterations);
    RUN(nesting_depth);
    RUN(output_size);
    RUN(memory);
    RUN(run_time);
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
