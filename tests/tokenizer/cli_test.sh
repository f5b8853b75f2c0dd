#!/usr/bin/env bash
# End-to-end checks of `wedlm tokenize | detokenize | template`. Expected ids and prompts are
# the Hugging Face references from tests/fixtures/tokenizer (encode_cases.json, chat_cases.json).
# Usage: cli_test.sh WEDLM_BINARY TOKENIZER_DIR FIXTURES_DIR
set -u
wedlm="$1" model="$2" fixtures="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

check() {  # name expected actual
  if [ "$2" != "$3" ]; then
    echo "FAIL $1"; echo "  expected: $(printf '%q' "$2")"; echo "  actual:   $(printf '%q' "$3")"
    failures=$((failures + 1))
  fi
}
fails_with() {  # name message-fragment command...
  local name="$1" fragment="$2"; shift 2
  local err
  if err="$("$@" 2>&1 >/dev/null)"; then
    echo "FAIL $name: exit status 0"; failures=$((failures + 1))
  elif [[ "$err" != *"$fragment"* ]]; then
    echo "FAIL $name: message lacks '$fragment': $err"; failures=$((failures + 1))
  fi
}

check "tokenize --text" "[40,2776]" "$("$wedlm" tokenize --model "$model" --text "I'm")"
check "tokenize stdin keeps CRLF verbatim" "[64,319,65]" "$(printf 'a\r\nb' | "$wedlm" tokenize --model "$model")"
check "tokenize empty stdin" "[]" "$(printf '' | "$wedlm" tokenize --model "$model")"
special=$'<|im_start|>user\nHello!<|im_end|>\n'
check "tokenize parses special tokens" "[151644,872,198,9707,0,151645,198]" \
  "$("$wedlm" tokenize --model "$model" --text "$special")"
check "tokenize --special false" "[27,91,318,4906,91,29,872,198,9707,86932,91,318,6213,91,397]" \
  "$("$wedlm" tokenize --model "$model" --special false --text "$special")"

"$wedlm" detokenize --model "$model" --ids 151644,872,198,9707,0,151645,198 >"$work/decoded"
printf '%s' "$special" >"$work/expected"
cmp -s "$work/decoded" "$work/expected" || { echo "FAIL detokenize"; failures=$((failures + 1)); }
"$wedlm" detokenize --model "$model" --ids "151644, 872,198,9707,0,151645,198" --skip-special >"$work/decoded"
printf 'user\nHello!\n' >"$work/expected"
cmp -s "$work/decoded" "$work/expected" || { echo "FAIL detokenize --skip-special"; failures=$((failures + 1)); }

fails_with "missing model dir" "does not exist" "$wedlm" tokenize --model "$work/nope" --text x
fails_with "bad id" "'12x' is not a token id" "$wedlm" detokenize --model "$model" --ids 1,12x
fails_with "id outside vocabulary" "token id 151700 is not in the vocabulary" "$wedlm" detokenize --model "$model" --ids 151700
fails_with "empty id item" "is not a token id" "$wedlm" detokenize --model "$model" --ids 1,,2
mkdir "$work/broken" && echo '{"model": ' >"$work/broken/tokenizer.json"
fails_with "bad tokenizer.json" "not valid JSON" "$wedlm" tokenize --model "$work/broken" --text x
echo '[{"role": "user", "content": "hi"}' >"$work/bad_messages.json"
fails_with "bad messages JSON" "not valid JSON" "$wedlm" template --model "$model" --messages "$work/bad_messages.json"

# Chat template: case "tool_call_roundtrip" of chat_cases.json (tools given, generation prompt on)
# and "single_user_no_thinking".
cat >"$work/messages.json" <<'JSON'
[{"role": "user", "content": "Hello!"}]
JSON
"$wedlm" template --model "$model" --messages "$work/messages.json" --enable-thinking false >"$work/rendered"
printf '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' >"$work/expected"
cmp -s "$work/rendered" "$work/expected" || { echo "FAIL template --enable-thinking false"; failures=$((failures + 1)); }
"$wedlm" template --model "$model" --messages "$work/messages.json" --no-generation-prompt >"$work/rendered"
printf '<|im_start|>user\nHello!<|im_end|>\n' >"$work/expected"
cmp -s "$work/rendered" "$work/expected" || { echo "FAIL template --no-generation-prompt"; failures=$((failures + 1)); }
cat >"$work/tools.json" <<'JSON'
[{"name": "calculator", "description": "Evaluate arithmetic", "parameters": {}}]
JSON
cat >"$work/messages.json" <<'JSON'
[{"role": "user", "content": "2+2?"}]
JSON
"$wedlm" template --model "$model" --messages "$work/messages.json" --tools "$work/tools.json" --enable-thinking false >"$work/rendered"
grep -q '"name": "tools_bare_function"' "$fixtures/chat_cases.json" || { echo "FAIL fixture lacks tools_bare_function"; failures=$((failures + 1)); }
cat >"$work/expected" <<'TEXT'
<|im_start|>system
# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"name": "calculator", "description": "Evaluate arithmetic", "parameters": {}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
<think>

</think>

TEXT
cmp -s "$work/rendered" "$work/expected" || { echo "FAIL template --tools"; diff "$work/expected" "$work/rendered"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] && echo "all CLI checks passed"
exit "$failures"
