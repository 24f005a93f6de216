/*
 * test_cli.c - awq-cli as a user meets it: exit codes and messages for bad input, and Ctrl-C
 * during quantize leaving nothing behind. Runs the built binary (AWQ_TEST_BIN_DIR/awq-cli).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char cli[1024], tmp[256];

/* Runs a shell command line, captures stderr+stdout into out; returns the exit code. */
static int run(const char *cmdline, char *out, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmdline);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char out[1 << 16];

TEST(usage_and_unknown_things) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s", cli);
    ASSERT_EQ(run(cmd, out, sizeof out), 2);
    ASSERT(strstr(out, "usage"));
    snprintf(cmd, sizeof cmd, "%s frobnicate", cli);
    ASSERT_EQ(run(cmd, out, sizeof out), 2);
    ASSERT(strstr(out, "unknown command 'frobnicate'"));
    snprintf(cmd, sizeof cmd, "%s generate %s -p hi --top-p 7", cli, tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 2);
    ASSERT(strstr(out, "--top-p"));
    snprintf(cmd, sizeof cmd, "%s info", cli);
    ASSERT_EQ(run(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "cpu:0"));
}

TEST(missing_and_broken_models) {
    char cmd[2048], dir[512];
    snprintf(cmd, sizeof cmd, "%s generate %s/nonexistent -p hi", cli, tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "nonexistent"));
    /* a directory whose config.json is not JSON */
    snprintf(dir, sizeof dir, "%s/badjson", tmp);
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd,
             "printf '{\"model_type\": \"llama\",' > %s/config.json && "
             "cp %s/tokenizer.json %s/tokenizer_config.json %s/ && %s eval %s --ppl /dev/null",
             dir, test_model_dir(), test_model_dir(), dir, cli, dir);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "config.json"));
    /* a truncated safetensors file */
    snprintf(dir, sizeof dir, "%s/truncated", tmp);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cp %s/*.json %s/ && head -c 100000 %s/model.safetensors > "
             "%s/model.safetensors && %s generate %s -p hi -n 1",
             dir, test_model_dir(), dir, test_model_dir(), dir, cli, dir);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "model.safetensors"));
    printf("  truncated model: %s", out);
}

TEST(quantize_refusals) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s quantize %s %s/q128 --group-size 128", cli, test_model_dir(), tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "--group-size 64"));
    printf("  g128: %s", out);
    snprintf(cmd, sizeof cmd, "%s quantize %s %s/q --group-size 48", cli, test_model_dir(), tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --group-size 64", cli, test_model_dir(), tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "already exists"));
}

TEST(ctrl_c_during_quantize_leaves_nothing) {
    char outdir[512];
    snprintf(outdir, sizeof outdir, "%s/interrupted", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(cli, cli, "quantize", test_model_dir(), outdir, "--group-size", "64", "--calib-samples", "64",
              (char *)NULL);
        _exit(127);
    }
    sleep(4);
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 130);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c interrupted", tmp);
    ASSERT_EQ(run(cmd, out, sizeof out), 1); /* grep found nothing: no OUT_DIR, no .tmp- dir */
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    snprintf(cli, sizeof cli, "%s/awq-cli", AWQ_TEST_BIN_DIR);
    if (test_tmpdir(tmp, sizeof tmp, "test-cli")) return 1;
    RUN(usage_and_unknown_things);
    RUN(missing_and_broken_models);
    RUN(quantize_refusals);
    RUN(ctrl_c_during_quantize_leaves_nothing);
    if (test_rmtree(tmp) != 0) printf("warning: cannot remove %s\n", tmp);
    return TEST_EXIT();
}
