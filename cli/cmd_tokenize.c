/* cmd_tokenize.c - `awq-cli tokenize MODEL [--ids|--pieces] [-f FILE] [--no-bos]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli tokenize MODEL [--ids|--pieces|--count|--decode] [--chat] [-f FILE]\n"
            "                          [--no-bos] [-v]\n"
            "\n"
            "Reads text from FILE (or standard input) and prints its tokens on one line.\n"
            "MODEL is a directory with tokenizer.json (+ tokenizer_config.json), or a GGUF file.\n"
            "\n"
            "  --ids        token ids, space-separated (default)\n"
            "  --pieces     vocabulary strings, space-separated; \\n, \\t, \\\\ and bytes < 0x20\n"
            "               are escaped\n"
            "  --count      only the number of tokens\n"
            "  --decode     the input is token ids (separated by spaces or newlines): print the text\n"
            "  --chat       the input is one user message: render the model's chat template with\n"
            "               the generation prompt and tokenize that (without extra BOS/EOS, as\n"
            "               the template writes them); with -v the prompt goes to stderr\n"
            "  -f FILE      read FILE instead of standard input\n"
            "  --no-bos     do not add the special tokens (BOS/EOS) the tokenizer adds\n"
            "  -v           print load and tokenization times to stderr\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    *len = n;
    return buf;
}

/* --decode: ids from text -> decoded text on stdout. */
static int decode_ids(awq_runtime *rt, awq_tokenizer *tok, const char *text, size_t len) {
    size_t cap = 1024, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    const char *p = text, *end = text + len;
    while (ids && p < end) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) {
            if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') {
                p++;
                continue;
            }
            fprintf(stderr, "awq-cli tokenize: --decode: not a token id near '%.10s'\n", p);
            free(ids);
            return 2;
        }
        if (n == cap) {
            int32_t *g = realloc(ids, cap * 2 * sizeof *ids);
            if (!g) break;
            ids = g;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = e;
    }
    if (!ids) return 1;
    size_t need = 0;
    awq_status st = awq_tokenizer_decode(tok, ids, (int64_t)n, false, NULL, 0, &need);
    char *out = st == AWQ_OK ? malloc(need + 1) : NULL;
    if (out) st = awq_tokenizer_decode(tok, ids, (int64_t)n, false, out, need + 1, &need);
    int rc = 0;
    if (st != AWQ_OK || !out)
        rc = cli_fail(rt, "tokenize", st != AWQ_OK ? st : AWQ_ERR_OUT_OF_MEMORY);
    else
        fwrite(out, 1, need, stdout);
    free(out);
    free(ids);
    return rc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_piece(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p == '\\')
            fputs("\\\\", stdout);
        else if (*p < 0x20)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int mode = 0; /* 0 ids, 1 pieces, 2 count, 3 decode */
    bool add_special = true, chat = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--ids"))
            mode = 0;
        else if (!strcmp(a, "--pieces"))
            mode = 1;
        else if (!strcmp(a, "--count"))
            mode = 2;
        else if (!strcmp(a, "--decode"))
            mode = 3;
        else if (!strcmp(a, "--chat"))
            chat = true;
        else if (!strcmp(a, "--no-bos"))
            add_special = false;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            cli_verbosity++;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            cli_verbosity = -1;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (++i >= argc) {
                fprintf(stderr, "awq-cli tokenize: -f needs a file\n");
                return 2;
            }
            file = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "awq-cli tokenize: unknown option '%s'\n", a);
            return 2;
        } else if (!model)
            model = a;
        else {
            fprintf(stderr, "awq-cli tokenize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!model) {
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    FILE *f = file ? fopen(file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "awq-cli tokenize: cannot open '%s'\n", file);
        return 1;
    }
    char *text = read_all(f, &len);
    if (file) fclose(f);
    if (!text) {
        fprintf(stderr, "awq-cli tokenize: out of memory reading input\n");
        return 1;
    }
    awq_runtime *rt = cli_runtime(1);
    if (!rt) {
        free(text);
        return 1;
    }
    awq_tokenizer *tok = NULL;
    int rc = 0;
    int32_t *ids = NULL;
    double t0 = now_s();
    awq_status st = awq_tokenizer_load(&tok, rt, model);
    if (st != AWQ_OK) {
        rc = cli_fail(rt, "tokenize", st);
        goto done;
    }
    double t1 = now_s();
    if (mode == 3) {
        rc = decode_ids(rt, tok, text, len);
        goto done;
    }
    char *prompt = NULL;
    if (chat) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--; /* echo's newline */
        text[len] = '\0';
        awq_chat_message msg = {"user", text};
        if ((st = awq_tokenizer_apply_chat(tok, &msg, 1, true, &prompt)) != AWQ_OK) {
            rc = cli_fail(rt, "tokenize", st);
            goto done;
        }
        if (cli_verbosity > 0) fprintf(stderr, "%s\n", prompt);
        free(text);
        text = strdup(prompt);
        awq_free(prompt);
        if (!text) {
            rc = 1;
            goto done;
        }
        len = strlen(text);
        add_special = false;
        t1 = now_s();
    }
    int64_t n = 0;
    st = awq_tokenizer_encode(tok, text, len, add_special, NULL, 0, &n);
    double t2 = now_s();
    if (st == AWQ_OK) {
        ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
        st = ids ? awq_tokenizer_encode(tok, text, len, add_special, ids, n, &n) : AWQ_ERR_OUT_OF_MEMORY;
    }
    if (st != AWQ_OK) {
        rc = cli_fail(rt, "tokenize", st);
        goto done;
    }
    if (cli_verbosity > 0)
        fprintf(stderr,
                "awq-cli tokenize: load %.3f s; encode %zu bytes -> %lld tokens in %.3f s "
                "(%.2f MB/s, first pass, one thread)\n",
                t1 - t0, len, (long long)n, t2 - t1, (double)len / 1e6 / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    if (mode == 2) {
        printf("%lld\n", (long long)n);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (i) putchar(' ');
            if (mode == 0)
                printf("%d", ids[i]);
            else {
                const char *p = awq_tokenizer_token_text(tok, ids[i]);
                print_piece(p ? p : "");
            }
        }
        putchar('\n');
    }
done:
    free(ids);
    free(text);
    awq_tokenizer_destroy(tok);
    awq_runtime_destroy(rt);
    return rc;
}
