#!/usr/bin/env python3
"""openai_client.py - drives `awq-cli serve` with the official `openai` Python client (PyPI
package `openai`, test tooling only): chat and completion, streaming and not, greedy, plus the
client's view of two errors (wrong API key, bad parameter). Prints one JSON object on stdout;
tests/server/test_server.c compares it with `awq-cli generate`.

usage: openai_client.py BASE_URL API_KEY MODEL PROMPT CHAT_MESSAGE MAX_TOKENS
exit 3 when the openai package is not installed (the test skips or fails on that).
"""
import json
import sys

try:
    import openai
except ImportError:
    print("openai package not installed", file=sys.stderr)
    sys.exit(3)


def main():
    base_url, key, model, prompt, question, max_tokens = sys.argv[1:7]
    max_tokens = int(max_tokens)
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    out = {"openai_version": openai.__version__}
    msgs = [{"role": "user", "content": question}]

    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=max_tokens, temperature=0)
    out["chat"] = r.choices[0].message.content
    out["chat_finish"] = r.choices[0].finish_reason
    out["chat_usage"] = [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens]

    parts, finish, usage = [], None, None
    for chunk in client.chat.completions.create(model=model, messages=msgs, max_tokens=max_tokens,
                                                temperature=0, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens]
        for c in chunk.choices:
            if c.delta.content:
                parts.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    out["chat_stream"] = "".join(parts)
    out["chat_stream_finish"] = finish
    out["chat_stream_usage"] = usage

    r = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0)
    out["completion"] = r.choices[0].text
    out["completion_finish"] = r.choices[0].finish_reason

    parts = []
    for chunk in client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                           temperature=0, stream=True):
        for c in chunk.choices:
            parts.append(c.text or "")
    out["completion_stream"] = "".join(parts)

    out["models"] = [m.id for m in client.models.list().data]

    try:
        openai.OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0).models.list()
        out["wrong_key"] = "accepted"
    except openai.AuthenticationError as e:
        out["wrong_key"] = e.status_code
    try:
        client.chat.completions.create(model=model, messages=msgs, max_tokens=-1)
        out["bad_param"] = "accepted"
    except openai.BadRequestError as e:
        out["bad_param"] = e.status_code
    print(json.dumps(out))


if __name__ == "__main__":
    main()
