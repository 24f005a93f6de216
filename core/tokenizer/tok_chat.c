/* tok_chat.c - awq_tokenizer_apply_chat: the model's chat_template with bos/eos tokens. */
#include "jinja.h"
#include "tok_internal.h"

awq_status awq_tokenizer_apply_chat(awq_tokenizer *tok, const awq_chat_message *msgs, int32_t n_msgs,
                                    bool add_generation_prompt, char **out) {
    if (!tok || !out) return AWQ_ERR_INVALID_ARG;
    *out = NULL;
    if (!tok->chat_template)
        return awq_set_error(tok->rt, AWQ_ERR_UNSUPPORTED,
                             "tokenizer has no chat_template (tokenizer_config.json or GGUF "
                             "tokenizer.chat_template)");
    jinja_vars v = {.bos_token = tok->bos_token, .eos_token = tok->eos_token};
    /* a GGUF or a config without token strings: use the vocabulary's text of the ids */
    if (!v.bos_token && tok->bos_id >= 0) v.bos_token = tok->text[tok->bos_id];
    if (!v.eos_token && tok->eos_id >= 0) v.eos_token = tok->text[tok->eos_id];
    return awq_jinja_render_chat(tok->rt, tok->chat_template, msgs, n_msgs, add_generation_prompt, &v, out);
}
