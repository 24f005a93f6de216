/*
 * test_tok_cli.c - `awq-cli tokenize` as a user runs it: ids equal the library's, --pieces shows
 * the vocabulary strings, --decode inverts, --chat renders the template, bad input exits non-zero
 * with a message. Runs the built binary (AWQ_TEST_BIN_DIR/awq-cli).
 */
#include <sys/wait.h>
#include <unistd.h>

#include "awq.h"
#include "test.h"

static char cli[1024], dir_llama3[1024], dir_qwen3[1024], out[1 << 16];

static int run(const char *cmdline, char *buf, size_t cap) {
    FILE *p = popen(cmdline, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static awq_tokenizer *load(awq_runtime *rt, const char *dir) {
    awq_tokenizer *t = NULL;
    return awq_tokenizer_load(&t, rt, dir) == AWQ_OK ? t : NULL;
}

TEST(ids_pieces_decode) {
    awq_runtime *rt = NULL;
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    ASSERT_OK(awq_runtime_create(&rt, &p));
    awq_tokenizer *t = load(rt, dir_llama3);
    ASSERT(t);
    const char *text = "Hello world, it's 2024!";
    int32_t ids[64];
    int64_t n = 0;
    ASSERT_OK(awq_tokenizer_encode(t, text, strlen(text), true, ids, 64, &n));
    char expect[1024] = "", num[16];
    for (int64_t i = 0; i < n; i++) {
        snprintf(num, sizeof num, i ? " %d" : "%d", ids[i]);
        strcat(expect, num);
    }
    strcat(expect, "\n");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf '%%s' \"%s\" | %s tokenize %s", text, cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 0);
    ASSERT_STREQ(out, expect);
    snprintf(cmd, sizeof cmd, "printf 'Hello world' | %s tokenize %s --pieces", cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 0);
    ASSERT_STREQ(out, "Hello \xC4\xA0world\n"); /* Ġ marks the space in byte-level pieces */
    snprintf(cmd, sizeof cmd, "printf '%%s' \"%s\" | %s tokenize %s | %s tokenize %s --decode", text, cli,
             dir_llama3, cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 0);
    ASSERT_STREQ(out, text);
    awq_tokenizer_destroy(t);

    /* --chat: the ids decode to the rendered template */
    t = load(rt, dir_qwen3);
    ASSERT(t);
    awq_chat_message m = {"user", "Hi"};
    char *prompt = NULL;
    ASSERT_OK(awq_tokenizer_apply_chat(t, &m, 1, true, &prompt));
    snprintf(cmd, sizeof cmd, "echo Hi | %s tokenize %s --chat | %s tokenize %s --decode", cli, dir_qwen3,
             cli, dir_qwen3);
    ASSERT_EQ(run(cmd, out, sizeof out), 0);
    ASSERT_STREQ(out, prompt);
    awq_free(prompt);
    awq_tokenizer_destroy(t);
    awq_runtime_destroy(rt);
}

TEST(bad_input) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s tokenize %s --frobnicate 2>&1", cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 2);
    ASSERT(strstr(out, "--frobnicate"));
    snprintf(cmd, sizeof cmd, "echo hi | %s tokenize /nonexistent/dir 2>&1", cli);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "/nonexistent/dir/tokenizer.json"));
    snprintf(cmd, sizeof cmd, "echo 1 x | %s tokenize %s --decode 2>&1", cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "echo 999999999 | %s tokenize %s --decode 2>&1", cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "out of range"));
    snprintf(cmd, sizeof cmd, "%s tokenize %s -f /nonexistent/file 2>&1", cli, dir_llama3);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
}

int main(void) {
    if (!test_shared_data()) return 77;
    snprintf(cli, sizeof cli, "%s/awq-cli", AWQ_TEST_BIN_DIR);
    if (access(cli, X_OK) != 0) {
        printf("SKIP: %s not built\n", cli);
        return 77;
    }
    snprintf(dir_llama3, sizeof dir_llama3, "%s/tokenizers/llama3", test_shared_data());
    snprintf(dir_qwen3, sizeof dir_qwen3, "%s/tokenizers/qwen3", test_shared_data());
    RUN(ids_pieces_decode);
    RUN(bad_input);
    return TEST_EXIT();
}
