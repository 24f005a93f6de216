/*
 * test_chat.c - `awq-cli chat` as a person uses it, in a real terminal: tmux runs it, send-keys
 * types and capture-pane reads the screen. Two turns (the second needs the first's context),
 * Ctrl-C during an answer stops that answer and not the program, /reset, Ctrl-C at the prompt,
 * and Ctrl-D exits with status 0. Greedy (--temp 0) on the fp16 SmolLM2.
 *
 * Needs tmux (Debian package); skips without it unless AWQ_REQUIRE_SERVER_TOOLS=1.
 * Environment: AWQ_TEST_MODEL_DIR.
 */
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char tmux[256], screen[1 << 16];

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The visible pane (and scrollback) into screen. */
static const char *capture(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s capture-pane -p -J -S -200 -t chat 2>/dev/null", tmux);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(screen, 1, sizeof screen - 1, p) : 0;
    screen[n] = '\0';
    if (p) pclose(p);
    return screen;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Waits until the screen holds at least n occurrences of needle. */
static bool wait_for(const char *needle, int n, double seconds) {
    for (double t = 0; t < seconds; t += 0.1) {
        if (count(capture(), needle) >= n) return true;
        usleep(100000);
    }
    return false;
}

static void keys(const char *k) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s send-keys -t chat %s", tmux, k);
    if (sh(cmd) != 0) printf("  send-keys failed: %s\n", k);
}

/* The prompt appears at the start of a line as "> ". */
#define PROMPT "\n> "

TEST(two_turns_ctrl_c_and_ctrl_d) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s new-session -d -s chat -x 150 -y 50 \"AWQ_BACKEND_PATH=%s OMP_WAIT_POLICY=passive "
             "%s/awq-cli chat %s --temp 0 -n 300 --backend cpu -t 2; echo CHAT-EXITED-\\$?; sleep 120\"",
             tmux, AWQ_TEST_BIN_DIR, AWQ_TEST_BIN_DIR, test_model_dir());
    ASSERT_EQ(sh(cmd), 0);
    ASSERT_MSG(wait_for("Ctrl-D exits.", 1, 60), "no banner:\n%s", screen);
    ASSERT_MSG(wait_for(PROMPT, 1, 10), "no prompt:\n%s", screen);
    keys("'What is the capital of France?' Enter");
    ASSERT_MSG(wait_for(PROMPT, 2, 60), "first answer did not finish:\n%s", screen);
    ASSERT_MSG(strstr(screen, "Paris"), "first answer:\n%s", screen);
    keys("'And of Germany?' Enter"); /* only answerable with the first turn in context */
    ASSERT_MSG(wait_for(PROMPT, 3, 60), "second answer did not finish:\n%s", screen);
    ASSERT_MSG(strstr(screen, "Berlin"), "second answer:\n%s", screen);
    // Ctrl-C while the answer is being written
    keys("'Write a very long story about a dragon.' Enter");
    ASSERT(wait_for("dragon", 2, 30)); /* the answer has started */
    usleep(1500 * 1000);
    keys("C-c");
    ASSERT_MSG(wait_for("[stopped]", 1, 20), "Ctrl-C did not stop the answer:\n%s", screen);
    ASSERT_MSG(wait_for(PROMPT, 4, 10), "no prompt after Ctrl-C:\n%s", screen);
    ASSERT(!strstr(screen, "CHAT-EXITED"));
    // still alive: /reset, Ctrl-C at the prompt, one more answer
    keys("/reset Enter");
    ASSERT(wait_for("[conversation reset]", 1, 10));
    keys("C-c");
    ASSERT(wait_for(PROMPT, 6, 10));
    ASSERT(!strstr(screen, "CHAT-EXITED"));
    keys("'What is 2+2?' Enter");
    ASSERT_MSG(wait_for(PROMPT, 7, 60), "answer after reset did not finish:\n%s", screen);
    // Ctrl-D exits cleanly
    keys("C-d");
    ASSERT_MSG(wait_for("CHAT-EXITED-", 1, 20), "Ctrl-D did not exit:\n%s", screen);
    ASSERT_MSG(strstr(screen, "CHAT-EXITED-0"), "exit status:\n%s", screen);
    printf("%s\n", screen);
}

int main(void) {
    if (!test_model_dir()) return test_skip_or_fail("AWQ_TEST_MODEL_DIR not set");
    if (sh("tmux -V > /dev/null 2>&1") != 0) {
        const char *req = getenv("AWQ_REQUIRE_SERVER_TOOLS");
        if (req && req[0] == '1') {
            printf("FAIL: tmux not found (AWQ_REQUIRE_SERVER_TOOLS=1)\n");
            return 1;
        }
        printf("SKIP: tmux not found\n");
        return 77;
    }
    // a private tmux server (its own socket), so nothing of the user's is touched
    snprintf(tmux, sizeof tmux, "tmux -L awq-test-chat-%d -f /dev/null", (int)getpid());
    RUN(two_turns_ctrl_c_and_ctrl_d);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "%s kill-server 2>/dev/null", tmux);
    sh(cmd);
    return TEST_EXIT();
}
