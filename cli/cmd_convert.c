/* cmd_convert.c - `awq-cli convert MODEL.gguf OUT_DIR [--dtype f16|bf16|f32] [--force]`. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli convert MODEL.gguf OUT_DIR [--dtype f16|bf16|f32] [--force]\n"
            "\n"
            "Writes a Hugging Face-layout directory (config.json, model.safetensors, tokenizer.json,\n"
            "tokenizer_config.json, generation_config.json) from a Llama-family GGUF file\n"
            "(llama, mistral, qwen2, qwen3). Quantized GGUF weights are dequantized.\n"
            "\n"
            "  --dtype T    f16 (default), bf16 or f32\n"
            "  --force      replace OUT_DIR if it exists\n");
}

static bool progress(float done, const char *stage, void *user) {
    (void)stage;
    int *last = user;
    int pct = (int)(done * 100.0f);
    if (pct / 10 != *last / 10 || pct == 100) {
        fprintf(stderr, "\rconvert: %3d%%", pct);
        if (pct == 100) fputc('\n', stderr);
        *last = pct;
    }
    return !cli_interrupted();
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dtype = "f16";
    bool force = false;
    cli_args a = {.argc = argc, .argv = argv, .cmd = "convert"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_flag(&a, "-h", "--help")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(&a, "-v", "--verbose"))
            cli_verbosity++;
        else if (cli_flag(&a, NULL, "--force"))
            force = true;
        else if (cli_opt(&a, NULL, "--dtype", &dtype)) {
        } else if (argv[a.i][0] == '-') {
            fprintf(stderr, "awq-cli convert: unknown option '%s'\n", argv[a.i]);
            return 2;
        } else if (!in)
            in = argv[a.i];
        else if (!out)
            out = argv[a.i];
        else {
            fprintf(stderr, "awq-cli convert: unexpected argument '%s'\n", argv[a.i]);
            return 2;
        }
        if (a.error) return 2;
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    awq_convert_params p = awq_convert_params_default();
    if (!strcmp(dtype, "f16"))
        p.dtype = AWQ_DTYPE_F16;
    else if (!strcmp(dtype, "bf16"))
        p.dtype = AWQ_DTYPE_BF16;
    else if (!strcmp(dtype, "f32"))
        p.dtype = AWQ_DTYPE_F32;
    else {
        fprintf(stderr, "awq-cli convert: --dtype must be f16, bf16 or f32\n");
        return 2;
    }
    p.force = force;
    int last = -10;
    p.progress = progress;
    p.progress_user = &last;
    awq_runtime *rt = cli_runtime(0);
    if (!rt) return 1;
    cli_catch_signals();
    awq_status st = awq_convert_gguf(rt, in, out, &p);
    int rc = 0;
    if (st == AWQ_ERR_CANCELLED || cli_interrupted()) {
        fprintf(stderr, "\nawq-cli convert: interrupted; nothing was written to %s\n", out);
        rc = 130;
    } else if (st != AWQ_OK) {
        rc = cli_fail(rt, "convert", st);
    } else {
        fprintf(stderr, "awq-cli convert: wrote %s\n", out);
    }
    awq_runtime_destroy(rt);
    return rc;
}
