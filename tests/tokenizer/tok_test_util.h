/* tok_test_util.h - helpers shared by the tokenizer tests: llama.cpp vocab test files, files. */
#ifndef AWQ_TESTS_TOK_TEST_UTIL_H
#define AWQ_TESTS_TOK_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole file, NUL-terminated; NULL if unreadable. */
static inline char *tt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* llama.cpp's test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n" (the file
 * ends with one), expected ids one line per input. */
typedef struct tt_case {
    char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
} tt_case;

static inline void tt_free_cases(tt_case *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

/* Returns the number of cases (or -1). */
static inline int tt_load_cases(const char *inp_path, const char *out_path, tt_case **out) {
    size_t il, ol;
    char *inp = tt_read_file(inp_path, &il), *outs = tt_read_file(out_path, &ol);
    if (!inp || !outs) {
        free(inp);
        free(outs);
        return -1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int cap = 64, n = 0;
    tt_case *cases = calloc((size_t)cap, sizeof *cases);
    char *p = inp;
    for (;;) {
        char *q = strstr(p, sep);
        if (!q) break;
        if (n == cap) break;
        cases[n].len = (size_t)(q - p);
        cases[n].text = malloc(cases[n].len + 1);
        memcpy(cases[n].text, p, cases[n].len);
        cases[n].text[cases[n].len] = '\0';
        n++;
        p = q + sizeof sep - 1;
    }
    /* expected ids: one line per case */
    char *line = outs;
    for (int i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line);
        cases[i].ids = malloc(sizeof(int32_t) * 4096);
        char *s = line;
        while (s < nl) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s) break;
            if (e > nl) break;
            cases[i].ids[cases[i].n_ids++] = (int32_t)v;
            s = e;
        }
        line = *nl ? nl + 1 : nl;
    }
    free(inp);
    free(outs);
    *out = cases;
    return n;
}

#endif
