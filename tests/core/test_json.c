/* test_json.c - JSON helpers: parse errors with positions, typed getters, the atomic writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "test.h"

static awq_runtime *rt;
static char tmpdir[256];

static awq_status parse_str(const char *s, cJSON **out) {
    return awq_json_parse(rt, "t.json", s, strlen(s), out);
}

TEST(parse_ok) {
    cJSON *j = NULL;
    ASSERT_OK_RT(parse_str(" {\"a\": [1, 2, 3], \"b\": {\"c\": \"d\"}}\n\n ", &j), rt);
    ASSERT(cJSON_IsObject(j));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "a")), 3);
    cJSON_Delete(j);
    /* A length that excludes trailing garbage parses only the prefix. */
    const char *s = "{\"x\":1}GARBAGE";
    ASSERT_OK_RT(awq_json_parse(rt, "t.json", s, 7, &j), rt);
    cJSON_Delete(j);
}

TEST(parse_errors) {
    cJSON *j = (cJSON *)1;
    ASSERT_ERR_RT(parse_str("{\"a\": 1,\n  \"b\": }", &j), rt, AWQ_ERR_FORMAT, "line 2");
    ASSERT(j == NULL);
    ASSERT_ERR_RT(parse_str("{\"a\": 1,\n  \"b\": }", &j), rt, AWQ_ERR_FORMAT, "t.json");
    ASSERT_ERR_RT(parse_str("{} x", &j), rt, AWQ_ERR_FORMAT, "byte 3");
    ASSERT_ERR_RT(parse_str("", &j), rt, AWQ_ERR_FORMAT, "empty");
    ASSERT_ERR_RT(parse_str("{\"a\": [1, 2", &j), rt, AWQ_ERR_FORMAT, "t.json: invalid JSON");
    ASSERT_ERR_RT(parse_str("nul", &j), rt, AWQ_ERR_FORMAT, "invalid JSON");
    /* Column counts from 1: the error is at the 'x' (column 6 of line 1). */
    ASSERT_ERR_RT(parse_str("[1, 2x]", &j), rt, AWQ_ERR_FORMAT, "line 1, column 6");
}

TEST(parse_file) {
    cJSON *j = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/does-not-exist.json", tmpdir);
    ASSERT_ERR_RT(awq_json_parse_file(rt, path, &j), rt, AWQ_ERR_IO, "does-not-exist.json");
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("{\n  \"model_type\": \"llama\",\n  \"x\": tru\n}\n", f);
    fclose(f);
    ASSERT_ERR_RT(awq_json_parse_file(rt, path, &j), rt, AWQ_ERR_FORMAT, "bad.json");
    ASSERT_ERR_RT(awq_json_parse_file(rt, path, &j), rt, AWQ_ERR_FORMAT, "line 3");
}

TEST(getters) {
    cJSON *j = NULL;
    ASSERT_OK_RT(parse_str("{\"i\": 42, \"neg\": -7, \"f\": 1.5, \"big\": 1e30, \"s\": \"str\","
                           " \"b\": true, \"n\": null, \"arr\": [1]}",
                           &j),
                 rt);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;
    ASSERT_OK_RT(awq_json_get_int(rt, j, "config.json", "i", true, 0, &i), rt);
    ASSERT_EQ(i, 42);
    ASSERT_OK_RT(awq_json_get_int(rt, j, "config.json", "neg", true, 0, &i), rt);
    ASSERT_EQ(i, -7);
    ASSERT_OK_RT(awq_json_get_int(rt, j, "config.json", "absent", false, 9, &i), rt);
    ASSERT_EQ(i, 9);
    ASSERT_OK_RT(awq_json_get_int(rt, j, "config.json", "n", false, 11, &i), rt); /* null = absent */
    ASSERT_EQ(i, 11);
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "n", true, 0, &i), rt, AWQ_ERR_FORMAT,
                  "config.json: missing key 'n'");
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "absent", true, 0, &i), rt, AWQ_ERR_FORMAT,
                  "config.json: missing key 'absent'");
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "f", true, 0, &i), rt, AWQ_ERR_FORMAT,
                  "config.json: 'f': expected an integer, got number 1.5");
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "big", true, 0, &i), rt, AWQ_ERR_FORMAT,
                  "'big': expected an integer");
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "s", false, 0, &i), rt, AWQ_ERR_FORMAT,
                  "'s': expected an integer, got string \"str\"");
    ASSERT_ERR_RT(awq_json_get_int(rt, j, "config.json", "arr", false, 0, &i), rt, AWQ_ERR_FORMAT,
                  "got array");

    ASSERT_OK_RT(awq_json_get_double(rt, j, "c", "f", true, 0, &d), rt);
    ASSERT(d == 1.5);
    ASSERT_OK_RT(awq_json_get_double(rt, j, "c", "i", true, 0, &d), rt);
    ASSERT(d == 42.0);
    ASSERT_OK_RT(awq_json_get_double(rt, j, "c", "absent", false, 0.25, &d), rt);
    ASSERT(d == 0.25);
    ASSERT_ERR_RT(awq_json_get_double(rt, j, "c", "b", true, 0, &d), rt, AWQ_ERR_FORMAT,
                  "'b': expected a finite number, got true");

    ASSERT_OK_RT(awq_json_get_bool(rt, j, "c", "b", true, false, &b), rt);
    ASSERT(b);
    ASSERT_OK_RT(awq_json_get_bool(rt, j, "c", "absent", false, true, &b), rt);
    ASSERT(b);
    ASSERT_ERR_RT(awq_json_get_bool(rt, j, "c", "i", true, false, &b), rt, AWQ_ERR_FORMAT,
                  "'i': expected true or false, got number 42");

    ASSERT_OK_RT(awq_json_get_string(rt, j, "c", "s", true, NULL, &s), rt);
    ASSERT_STREQ(s, "str");
    ASSERT_OK_RT(awq_json_get_string(rt, j, "c", "absent", false, "dflt", &s), rt);
    ASSERT_STREQ(s, "dflt");
    ASSERT_ERR_RT(awq_json_get_string(rt, j, "c", "i", true, NULL, &s), rt, AWQ_ERR_FORMAT,
                  "c: 'i': expected a string, got number 42");
    /* A non-object container is an error, not a crash. */
    ASSERT_ERR_RT(awq_json_get_string(rt, cJSON_GetObjectItem(j, "arr"), "c", "k", false, NULL, &s), rt,
                  AWQ_ERR_FORMAT, "expected a JSON object");
    cJSON_Delete(j);
}

/* The writer's text is checked against what Python's json.dump(obj, f, indent=2,
 * ensure_ascii=False) produces for the same object (written out by hand). */
TEST(write_file) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_type", "llama");
    cJSON_AddNumberToObject(root, "hidden_size", 576);
    cJSON_AddNumberToObject(root, "rms_norm_eps", 1e-05);
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    cJSON_AddNumberToObject(root, "neg", -3);
    cJSON_AddBoolToObject(root, "tie", true);
    cJSON_AddBoolToObject(root, "f", false);
    cJSON_AddNullToObject(root, "z");
    cJSON_AddItemToObject(root, "empty_obj", cJSON_CreateObject());
    cJSON_AddItemToObject(root, "empty_arr", cJSON_CreateArray());
    cJSON *arr = cJSON_AddArrayToObject(root, "ids");
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(2));
    cJSON *q = cJSON_AddObjectToObject(root, "q");
    cJSON_AddStringToObject(q, "s", "a\"b\\c\nd\te\x01 \xc3\xa9");
    const char *expect = "{\n"
                         "  \"model_type\": \"llama\",\n"
                         "  \"hidden_size\": 576,\n"
                         "  \"rms_norm_eps\": 1e-05,\n"
                         "  \"initializer_range\": 0.02,\n"
                         "  \"neg\": -3,\n"
                         "  \"tie\": true,\n"
                         "  \"f\": false,\n"
                         "  \"z\": null,\n"
                         "  \"empty_obj\": {},\n"
                         "  \"empty_arr\": [],\n"
                         "  \"ids\": [\n"
                         "    1,\n"
                         "    2\n"
                         "  ],\n"
                         "  \"q\": {\n"
                         "    \"s\": \"a\\\"b\\\\c\\nd\\te\\u0001 \xc3\xa9\"\n"
                         "  }\n"
                         "}\n";
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/out.json", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ASSERT_OK_RT(awq_json_write_file(rt, path, root), rt);
    char *text = NULL;
    size_t len = 0;
    ASSERT_OK_RT(awq_read_file(rt, path, &text, &len), rt);
    int same = strcmp(text, expect) == 0;
    if (!same) printf("got:\n%s\nwant:\n%s\n", text, expect);
    ASSERT(same);
    ASSERT(!awq_file_exists(tmp));
    /* And it parses back to the same values. */
    cJSON *back = NULL;
    ASSERT_OK_RT(awq_json_parse(rt, "out.json", text, len, &back), rt);
    awq_free(text);
    ASSERT(cJSON_Compare(root, back, true));
    cJSON_Delete(back);
    /* A file that cannot be created is an I/O error naming it. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no-such-dir/x.json", tmpdir);
    ASSERT_ERR_RT(awq_json_write_file(rt, bad, root), rt, AWQ_ERR_IO, "no-such-dir");
    cJSON_Delete(root);
}

/* Doubles that need 16 or 17 significant digits round-trip exactly through the writer. */
TEST(write_roundtrip_doubles) {
    const double vals[] = {0.1,    1.0 / 3.0,           2.0 / 3.0,         1e300, -1e-300, 123456789.125,
                           5e-324, 0.30000000000000004, 9007199254740993.0};
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(vals[i]));
    char path[512];
    snprintf(path, sizeof path, "%s/d.json", tmpdir);
    ASSERT_OK_RT(awq_json_write_file(rt, path, arr), rt);
    cJSON *back = NULL;
    ASSERT_OK_RT(awq_json_parse_file(rt, path, &back), rt);
    ASSERT_EQ(cJSON_GetArraySize(back), (int)(sizeof vals / sizeof vals[0]));
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        ASSERT_MSG(cJSON_GetArrayItem(back, (int)i)->valuedouble == vals[i], "value %zu: %.17g != %.17g", i,
                   cJSON_GetArrayItem(back, (int)i)->valuedouble, vals[i]);
    cJSON_Delete(back);
    cJSON_Delete(arr);
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&rt, &p) != AWQ_OK) return 1;
    if (test_tmpdir(tmpdir, sizeof tmpdir, "test-json")) return 1;
    RUN(parse_ok);
    RUN(parse_errors);
    RUN(parse_file);
    RUN(getters);
    RUN(write_file);
    RUN(write_roundtrip_doubles);
    if (test_rmtree(tmpdir) != 0) printf("warning: could not remove %s\n", tmpdir);
    awq_runtime_destroy(rt);
    return TEST_EXIT();
}
