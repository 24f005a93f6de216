/*
 * test_sha256.c - the SHA-256 behind awq-manifest.json and the resume fingerprints, against the
 * FIPS 180-4 / NIST CAVP example digests, fed whole and in odd-sized pieces (block boundaries).
 */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "test.h"

static const struct {
    const char *msg;
    size_t repeat;
    const char *hex;
} vecs[] = {
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrs"
     "tnopqrstu",
     1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};

TEST(nist_vectors) {
    for (size_t v = 0; v < sizeof vecs / sizeof vecs[0]; v++) {
        size_t ml = strlen(vecs[v].msg), n = ml * vecs[v].repeat;
        char *buf = malloc(n + 1);
        ASSERT(buf);
        for (size_t r = 0; r < vecs[v].repeat; r++) memcpy(buf + r * ml, vecs[v].msg, ml);
        char hex[65];
        awq_sha256_hex(buf, n, hex);
        ASSERT_STREQ(hex, vecs[v].hex);
        /* the same bytes in pieces of 1, 7, 63, 64, 65, 1000 ... bytes */
        static const size_t steps[] = {1, 7, 63, 64, 65, 1000, 4099};
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            if (n > 100000 && steps[k] < 63) continue;
            awq_sha256 s;
            awq_sha256_init(&s);
            for (size_t off = 0; off < n; off += steps[k])
                awq_sha256_update(&s, buf + off, n - off < steps[k] ? n - off : steps[k]);
            awq_sha256_final_hex(&s, hex);
            ASSERT_STREQ(hex, vecs[v].hex);
        }
        free(buf);
    }
}

int main(void) {
    RUN(nist_vectors);
    return TEST_EXIT();
}
