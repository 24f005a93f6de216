# tests/tokenizer/extra.cmake - test_tok_cli runs the awq-cli binary: build it first.
if(TARGET test_tok_cli AND TARGET awq-cli)
  add_dependencies(test_tok_cli awq-cli)
endif()
