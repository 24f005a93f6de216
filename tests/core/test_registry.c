/*
 * test_registry.c - plugin discovery with fake plugins (tests/core/fake_plugin.c built in
 * several variants by extra.cmake): the good one loads and its devices appear; every bad one
 * is skipped exactly once with a line naming its file and the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

#ifndef AWQ_TEST_FAKE_PLUGIN_DIR
#error "AWQ_TEST_FAKE_PLUGIN_DIR must be defined (tests/core/extra.cmake)"
#endif
#define DIR_ AWQ_TEST_FAKE_PLUGIN_DIR

static char logbuf[16384];
static void capture_log(awq_log_level level, const char *msg, void *user) {
    (void)user;
    if (level > AWQ_LOG_LEVEL_INFO) return;
    strncat(logbuf, msg, sizeof logbuf - strlen(logbuf) - 2);
    strncat(logbuf, "\n", sizeof logbuf - strlen(logbuf) - 1);
}

/* Number of skipped lines for file (a path under the fake dir), and the last such line. */
static int skipped_for(const awq_runtime *rt, const char *file, const char **line) {
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "%s/%s: ", DIR_, file);
    int n = 0;
    for (int32_t i = 0; i < awq_runtime_skipped_count(rt); i++) {
        const char *s = awq_runtime_skipped_get(rt, i);
        if (strncmp(s, prefix, strlen(prefix)) == 0) {
            n++;
            if (line) *line = s;
        }
    }
    return n;
}

static const struct {
    const char *file, *reason;
} expect_skips[] = {
    {"libawq-backend-fake-small.so", "required members need"},
    {"libawq-backend-fake-missing.so", "required op 'rmsnorm' is missing"},
    {"libawq-backend-fake-probe.so", "no fake device here"},
    {"libawq-backend-fake-noexports.so", "not an awq backend plugin"},
    {"libawq-backend-fake-dupcpu.so", "backend 'cpu' already loaded"},
    {"libawq-backend-fake-garbage.so", ""}, /* dlopen's own message */
    {"libawq-backend-fake-abi.so", NULL},   /* reason built below */
};

TEST(loads_good_skips_bad) {
    unsetenv("AWQ_BACKEND_PATH");
    logbuf[0] = '\0';
    awq_runtime_params p = awq_runtime_params_default();
    p.backend_dir = DIR_;
    p.log = capture_log;
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, &p));

    const awq_backend_entry *e = awq_registry_find(rt, "fake");
    ASSERT_MSG(e != NULL, "the good fake plugin did not load; skipped: %s",
               awq_runtime_skipped_count(rt) ? awq_runtime_skipped_get(rt, 0) : "(none)");
    ASSERT_STREQ(e->path, DIR_ "/libawq-backend-fake-good.so");
    ASSERT_EQ(e->score, 5);
    ASSERT(e->dl != NULL);
    const char *bad_names[] = {"fakeabi", "fakesmall", "fakemissing", "fakeprobe"};
    for (int i = 0; i < 4; i++) ASSERT_MSG(!awq_registry_find(rt, bad_names[i]), "%s loaded", bad_names[i]);
    ASSERT(awq_registry_find(rt, "cpu")->dl == NULL); /* still the built-in one */
    /* A plugin built before the last appended members loads; those members read as NULL. */
    const awq_backend_entry *old = awq_registry_find(rt, "fakeold");
    ASSERT_MSG(old != NULL, "a plugin with a shorter (older) ops table did not load");
    ASSERT(old->own != NULL && old->ops == old->own && old->ops->supports_op == NULL);
    ASSERT(old->ops->quantize_w4 != NULL);

    /* Its two devices are listed after the cpu backend's. */
    int found = 0;
    for (int32_t i = 0; i < awq_runtime_device_count(rt); i++) {
        awq_device_desc d;
        ASSERT_OK(awq_runtime_device_get(rt, i, &d));
        if (strcmp(d.backend, "fake") == 0) {
            char want[64];
            snprintf(want, sizeof want, "Fake Device %d", (int)d.index);
            ASSERT_STREQ(d.name, want);
            ASSERT_EQ(d.memory_bytes, 1 << 20);
            found++;
        }
    }
    ASSERT_EQ(found, 2);

    char abi_reason[128];
    snprintf(abi_reason, sizeof abi_reason, "ABI version %u, this libawq needs %u",
             AWQ_BACKEND_ABI_VERSION + 1, AWQ_BACKEND_ABI_VERSION);
    for (size_t i = 0; i < sizeof expect_skips / sizeof expect_skips[0]; i++) {
        const char *line = NULL;
        int n = skipped_for(rt, expect_skips[i].file, &line);
        ASSERT_MSG(n == 1, "%s: %d skipped lines", expect_skips[i].file, n);
        const char *reason = expect_skips[i].reason ? expect_skips[i].reason : abi_reason;
        ASSERT_MSG(strstr(line, reason) != NULL, "\"%s\" lacks \"%s\"", line, reason);
        const char *after = strstr(line, ".so: ") + 5;
        ASSERT_MSG(strlen(after) > 3, "\"%s\" gives no reason", line);
        printf("  skipped: %s\n", line + strlen(DIR_) + 1);
        /* The reason was logged too. */
        ASSERT_MSG(strstr(logbuf, expect_skips[i].file) != NULL, "%s not logged", expect_skips[i].file);
    }
    ASSERT_EQ(skipped_for(rt, "libawq-backend-fake-good.so", NULL), 0);

    /* A device of the plugin opens through the normal path. */
    awq_device dev;
    ASSERT_OK_RT(awq_device_open(rt, "fake:1", 0, &dev), rt);
    ASSERT_STREQ(dev.label, "fake:1");
    ASSERT_STREQ(dev.info.name, "Fake Device 1");
    ASSERT(dev.ctx != NULL);
    awq_device_close(&dev);
    ASSERT_ERR_RT(awq_device_open(rt, "fake:2", 0, &dev), rt, AWQ_ERR_NO_BACKEND, "2 device(s)");
    ASSERT_ERR_RT(awq_device_open(rt, "fakeabi", 0, &dev), rt, AWQ_ERR_NO_BACKEND, "'fakeabi' is not loaded");
    ASSERT(strstr(awq_runtime_last_error(rt), "fake")); /* lists what is available */
    awq_runtime_destroy(rt);
}

TEST(no_plugins) {
    awq_runtime_params p = awq_runtime_params_default();
    p.backend_dir = DIR_;
    p.load_plugins = false;
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, &p));
    ASSERT(awq_registry_find(rt, "fake") == NULL);
    ASSERT(awq_registry_find(rt, "cpu") != NULL);
    ASSERT_EQ(awq_runtime_skipped_count(rt), 0);
    awq_runtime_destroy(rt);
}

/* backend_dir naming one file, and the same directory twice in $AWQ_BACKEND_PATH: each file
 * is tried once (no "already loaded" noise for the good plugin). */
TEST(single_file_and_duplicates) {
    setenv("AWQ_BACKEND_PATH", DIR_ ":" DIR_ "/:" DIR_ "/../fake_plugins", 1);
    awq_runtime_params p = awq_runtime_params_default();
    p.backend_dir = DIR_ "/libawq-backend-fake-good.so";
    awq_runtime *rt = NULL;
    ASSERT_OK(awq_runtime_create(&rt, &p));
    const awq_backend_entry *e = awq_registry_find(rt, "fake");
    ASSERT(e != NULL);
    ASSERT_STREQ(e->path, DIR_ "/libawq-backend-fake-good.so");
    int n_fake = 0;
    for (int32_t i = 0; i < awq_runtime_skipped_count(rt); i++) {
        const char *s = awq_runtime_skipped_get(rt, i);
        ASSERT_MSG(strstr(s, "fake-good") == NULL, "good plugin skipped: %s", s);
        n_fake += strstr(s, "fake-") != NULL;
    }
    ASSERT_EQ(n_fake, (int)(sizeof expect_skips / sizeof expect_skips[0]));
    awq_runtime_destroy(rt);
    unsetenv("AWQ_BACKEND_PATH");
}

int main(void) {
    RUN(loads_good_skips_bad);
    RUN(no_plugins);
    RUN(single_file_and_duplicates);
    return TEST_EXIT();
}
