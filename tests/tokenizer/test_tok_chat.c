/*
 * test_tok_chat.c - chat templates of the common families rendered by our Jinja subset, compared
 * with the strings the templates' own semantics produce (worked out by hand from each template,
 * with transformers' trim_blocks + lstrip_blocks environment).
 * Templates: SmolLM2 (ChatML, from its GGUF), Llama 3 and Qwen3 (from the tokenizer_config.json
 * files in shared data), Mistral 7B Instruct v0.1, Llama 2 chat and a Mistral v0.3-style
 * whitespace-controlled template (as published in their tokenizer_config.json files).
 */
#include <unistd.h>

#include "awq.h"
#include "test.h"
#include "tokenizer.h"
#include "jinja.h"

static awq_runtime *g_rt;

static const awq_chat_message conv[] = {
    {"system", "You are terse."},
    {"user", "Hi there"},
    {"assistant", "Hello! How can I help?"},
    {"user", "What is 2+2?"},
};

static char *render(const char *tmpl, const awq_chat_message *m, int n, bool gen, awq_status *st) {
    jinja_vars v = {.bos_token = "<s>", .eos_token = "</s>"};
    char *out = NULL;
    *st = awq_jinja_render_chat(g_rt, tmpl, m, n, gen, &v, &out);
    return out;
}

static const char smollm2_tmpl[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

TEST(smollm2_chatml) {
    awq_status st;
    char *s = render(smollm2_tmpl, conv, 4, true, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s,
                 "<|im_start|>system\nYou are terse.<|im_end|>\n"
                 "<|im_start|>user\nHi there<|im_end|>\n"
                 "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
                 "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                 "<|im_start|>assistant\n");
    awq_free(s);
    /* no system message: the template inserts its default one; no generation prompt */
    s = render(smollm2_tmpl, conv + 1, 1, false, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s,
                 "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                 "Hugging Face<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n");
    awq_free(s);
}

static awq_tokenizer *load(const char *dir) {
    char d[1024];
    snprintf(d, sizeof d, "%s/tokenizers/%s", test_shared_data(), dir);
    awq_tokenizer *t = NULL;
    if (awq_tokenizer_load(&t, g_rt, d) != AWQ_OK) printf("  %s\n", awq_runtime_last_error(g_rt));
    return t;
}

TEST(llama3_from_config) {
    awq_tokenizer *t = load("llama3");
    ASSERT(t);
    awq_chat_message m[3] = {
        {"system", "You are terse."}, {"user", "  Hi there \n"}, {"assistant", "Hello!"}};
    char *s = NULL;
    ASSERT_OK_RT(awq_tokenizer_apply_chat(t, m, 3, true, &s), g_rt);
    /* content | trim binds to the content only; bos_token before the first message; this
     * template always ends with the assistant header */
    ASSERT_STREQ(s,
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    awq_free(s);
    awq_tokenizer_destroy(t);
}

TEST(qwen3_from_config) {
    awq_tokenizer *t = load("qwen3");
    ASSERT(t);
    char *s = NULL;
    ASSERT_OK_RT(awq_tokenizer_apply_chat(t, conv, 4, true, &s), g_rt);
    ASSERT_STREQ(s,
                 "<|im_start|>system\nYou are terse.<|im_end|>\n"
                 "<|im_start|>user\nHi there<|im_end|>\n"
                 "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
                 "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                 "<|im_start|>assistant\n");
    awq_free(s);
    /* an assistant turn after the last user turn keeps its reasoning, split out of <think> */
    awq_chat_message m[2] = {{"user", "Q"}, {"assistant", "<think>\nplan\n</think>\n\nA"}};
    ASSERT_OK_RT(awq_tokenizer_apply_chat(t, m, 2, false, &s), g_rt);
    ASSERT_STREQ(s,
                 "<|im_start|>user\nQ<|im_end|>\n"
                 "<|im_start|>assistant\n<think>\nplan\n</think>\n\nA<|im_end|>\n");
    awq_free(s);
    /* an earlier assistant turn (before the last user turn) loses its reasoning */
    awq_chat_message m3[3] = {{"user", "Q"}, {"assistant", "<think>\nplan\n</think>\n\nA"}, {"user", "R"}};
    ASSERT_OK_RT(awq_tokenizer_apply_chat(t, m3, 3, true, &s), g_rt);
    ASSERT_STREQ(s,
                 "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
                 "<|im_start|>user\nR<|im_end|>\n<|im_start|>assistant\n");
    awq_free(s);
    awq_tokenizer_destroy(t);
}

static const char mistral_v01_tmpl[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 "
    "% 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] "
    "' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}";

TEST(mistral_v01) {
    awq_status st;
    char *s = render(mistral_v01_tmpl, conv + 1, 3, true, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s, "<s>[INST] Hi there [/INST]Hello! How can I help?</s> [INST] What is 2+2? [/INST]");
    awq_free(s);
    /* a system message breaks the alternation: the template raises */
    s = render(mistral_v01_tmpl, conv, 4, true, &st);
    ASSERT_EQ(st, AWQ_ERR_INVALID_ARG);
    ASSERT(s == NULL);
    ASSERT_MSG(strstr(awq_runtime_last_error(g_rt), "Conversation roles must alternate"), "%s",
               awq_runtime_last_error(g_rt));
}

static const char llama2_tmpl[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == "
    "'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != "
    "false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% "
    "endfor %}";

TEST(llama2_chat) {
    awq_status st;
    char *s = render(llama2_tmpl, conv, 4, true, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s,
                 "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST]"
                 " Hello! How can I help? </s><s>[INST] What is 2+2? [/INST]");
    awq_free(s);
}

static const char mistral_v03_tmpl[] =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.last and system_message is defined %}\n"
    "            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- '[INST] ' + message['content'] + '[/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content']|trim + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

TEST(mistral_v03_whitespace_control) {
    awq_status st;
    char *s = render(mistral_v03_tmpl, conv, 4, true, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s,
                 "<s>[INST] Hi there[/INST] Hello! How can I help?</s>"
                 "[INST] You are terse.\n\nWhat is 2+2?[/INST]");
    awq_free(s);
}

TEST(trim_and_lstrip_blocks) {
    /* block tags alone on a line leave nothing behind; {{ }} lines keep their newline */
    const char *tmpl = "{% for m in messages %}\n"
                       "  {% if m.role == 'user' %}\n"
                       "U: {{ m.content }}\n"
                       "  {% else %}\n"
                       "{{ m.role|upper }}: {{ m.content|length }}\n"
                       "  {% endif %}\n"
                       "{% endfor %}\n"
                       "{# a comment #}\n"
                       "{{ messages|length }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 'a' ~ 1 }} "
                       "{{ [1, 2, 3][::-1] }} {{ {'k': 'v'}|tojson }} {{ 'x' in 'xyz' }} "
                       "{{ none is none }} {{ 3 if false else 4 }} {{ 'a,b'.split(',') }}";
    awq_status st;
    char *s = render(tmpl, conv, 3, false, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s,
                 "SYSTEM: 14\nU: Hi there\nASSISTANT: 22\n"
                 "3 3 -4 1 a1 [3, 2, 1] {\"k\": \"v\"} True True 4 ['a', 'b']");
    awq_free(s);
    /* namespace objects carry values out of loops; plain set does not leak */
    const char *t2 = "{% set ns = namespace(n=0) %}{% set x = 1 %}{% for m in messages %}"
                     "{% set ns.n = ns.n + 1 %}{% set x = 99 %}{% endfor %}{{ ns.n }} {{ x }}";
    s = render(t2, conv, 4, false, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s, "4 1");
    awq_free(s);
    /* list filters, as tool-calling templates use them */
    const char *t3 =
        "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }} "
        "{{ [1, 2, 3, 4]|select('even')|list }} {{ [1, 2, 3]|reject('odd')|list }} "
        "{{ ['a', 'b', 'a']|unique|list }} "
        "{{ messages|rejectattr('role', 'in', ['system', 'user'])|list|length }} "
        "{{ ['a', 'b']|map('upper')|join }} {{ messages[-1].role }} {{ 'abc'[1:] }}";
    s = render(t3, conv, 4, false, &st);
    ASSERT_OK_RT(st, g_rt);
    ASSERT_STREQ(s, "Hi there|What is 2+2? [2, 4] [2] ['a', 'b'] 1 AB user bc");
    awq_free(s);
}

TEST(unsupported_is_an_error) {
    static const struct {
        const char *tmpl, *needle;
    } cases[] = {
        {"{% macro f() %}x{% endmacro %}", "macro"},
        {"{{ messages | wordcount }}", "wordcount"},
        {"{% for m in messages recursive %}{% endfor %}", "recursive"},
        {"{{ messages is divisibleby(3) }}", "divisibleby"},
        {"{% if true %}no end", "endif"},
        {"{{ undefined_function() }}", "undefined_function"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        awq_status st;
        char *s = render(cases[i].tmpl, conv, 2, false, &st);
        ASSERT_MSG(st != AWQ_OK && s == NULL, "case %zu rendered", i);
        ASSERT_MSG(strstr(awq_runtime_last_error(g_rt), cases[i].needle), "case %zu: %s", i,
                   awq_runtime_last_error(g_rt));
        ASSERT_MSG(strstr(awq_runtime_last_error(g_rt), "chat_template: line 1"), "case %zu: %s", i,
                   awq_runtime_last_error(g_rt));
    }
}

/* malformed or hostile templates fail cleanly (no crash, no output) */
TEST(malformed_templates) {
    static const char *const bad[] = {
        "{{",
        "{{ }}",
        "{% for %}",
        "{{ a[ }}",
        "{% if %}{% endif %}",
        "{{ 'abc }}",
        "{% endfor %}",
        "{% else %}",
        "{{ 1 + }}",
        "{{ x | }}",
        "{% set %}",
        "{{ (1, 2) }}",
        "{{ 1 / 0 }}",
        "{% for x in 5 %}{% endfor %}",
        "{{ {'a': 1} + 1 }}",
        "{#",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        awq_status st;
        char *s = render(bad[i], conv, 2, false, &st);
        ASSERT_MSG(st != AWQ_OK && !s, "template %zu '%s' rendered", i, bad[i]);
    }
    /* deep nesting is refused, not a stack overflow */
    size_t n = 20000;
    char *t = malloc(4 * n + 16);
    const char *forms[3] = {"(", "-", "not "};
    for (int k = 0; k < 3; k++) {
        size_t len = 0;
        memcpy(t + len, "{{ ", 3);
        len += 3;
        for (size_t i = 0; i < n; i++) {
            memcpy(t + len, forms[k], strlen(forms[k]));
            len += strlen(forms[k]);
        }
        t[len++] = '1';
        if (k == 0)
            for (size_t i = 0; i < n && len < 4 * n; i++) t[len++] = ')';
        memcpy(t + len, " }}", 4);
        awq_status st;
        char *s = render(t, conv, 2, false, &st);
        ASSERT_MSG(st == AWQ_ERR_UNSUPPORTED && !s, "nesting form %d: %d", k, st);
    }
    size_t len = 0;
    for (size_t i = 0; i < 5000; i++) {
        memcpy(t + len, "{% if 1 %}", 10);
        len += 10;
    }
    t[len] = '\0';
    awq_status st;
    char *s = render(t, conv, 2, false, &st);
    ASSERT(st != AWQ_OK && !s);
    free(t);
}

/* chat_template.jinja / chat_template.json beside tokenizer.json (no tokenizer_config.json):
 * bos_token then comes from the vocabulary text of the BOS id */
static void put_file(const char *dir, const char *name, const char *text, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, n, f);
        fclose(f);
    }
}

TEST(template_files) {
    char src[1024];
    snprintf(src, sizeof src, "%s/tests/tokenizer/data/tiny_metaspace.json", AWQ_TEST_SOURCE_DIR);
    FILE *f = fopen(src, "rb");
    ASSERT(f);
    static char json[1 << 16];
    size_t n = fread(json, 1, sizeof json, f);
    fclose(f);
    char dir[64];
    ASSERT(test_tmpdir(dir, sizeof dir, "tok-tmpl") == 0);
    put_file(dir, "tokenizer.json", json, n);
    const char *jinja = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}";
    const char *tj = "{\"chat_template\": \"{% for m in messages %}<{{ m.content }}>{% endfor %}\"}";
    awq_chat_message m = {"user", "Hi"};
    for (int k = 0; k < 2; k++) {
        put_file(dir, k ? "chat_template.json" : "chat_template.jinja", k ? tj : jinja,
                 strlen(k ? tj : jinja));
        awq_tokenizer *t = NULL;
        ASSERT_OK_RT(awq_tokenizer_load(&t, g_rt, dir), g_rt);
        char *s = NULL;
        ASSERT_OK_RT(awq_tokenizer_apply_chat(t, &m, 1, false, &s), g_rt);
        ASSERT_STREQ(s, k ? "<Hi>" : "<s>[user]Hi");
        awq_free(s);
        awq_tokenizer_destroy(t);
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, k ? "chat_template.json" : "chat_template.jinja");
        unlink(p);
    }
    /* no template anywhere: a clear error */
    awq_tokenizer *t = NULL;
    ASSERT_OK_RT(awq_tokenizer_load(&t, g_rt, dir), g_rt);
    char *s = NULL;
    ASSERT_ERR_RT(awq_tokenizer_apply_chat(t, &m, 1, false, &s), g_rt, AWQ_ERR_UNSUPPORTED, "chat_template");
    awq_tokenizer_destroy(t);
    test_rmtree(dir);
}

int main(void) {
    awq_runtime_params p = awq_runtime_params_default();
    p.load_plugins = false;
    if (awq_runtime_create(&g_rt, &p) != AWQ_OK) return 1;
    RUN(smollm2_chatml);
    RUN(mistral_v01);
    RUN(llama2_chat);
    RUN(mistral_v03_whitespace_control);
    RUN(trim_and_lstrip_blocks);
    RUN(unsupported_is_an_error);
    RUN(malformed_templates);
    RUN(template_files);
    if (test_shared_data()) {
        RUN(llama3_from_config);
        RUN(qwen3_from_config);
    }
    awq_runtime_destroy(g_rt);
    return TEST_EXIT();
}
