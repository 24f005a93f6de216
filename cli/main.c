/* main.c - awq-cli: subcommand dispatch. The only code (with tests/) that prints. */
#include <stdio.h>
#include <string.h>

#include "awq.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: awq-cli <command> [options]\n"
            "\n"
            "commands:\n"
            "  info                      backends, devices, and why any plugin was skipped\n"
            "  convert MODEL.gguf OUT    GGUF -> Hugging Face directory (fp16/bf16/f32)\n"
            "  quantize MODEL OUT        AWQ 4-bit quantization (AutoAWQ GEMM/GEMV format)\n"
            "  generate MODEL -p TEXT    generate text\n"
            "  eval MODEL --ppl FILE     perplexity; KL divergence from a base model (--base)\n"
            "  tokenize MODEL            text -> token ids\n"
            "  bench MODEL               prefill/decode speed\n"
            "  serve MODEL               OpenAI-compatible HTTP server (batched decoding)\n"
            "  chat MODEL                interactive chat in the terminal\n"
            "  verify DIR                check a quantized checkpoint against its SHA-256 manifest\n"
            "\n"
            "run `awq-cli <command> --help` for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("awq-cli %s\n", awq_version());
        return 0;
    }
    const char *cmd = argv[1];
    for (const cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, cmd)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "awq-cli: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
