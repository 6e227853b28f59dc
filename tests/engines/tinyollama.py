"""tinyqwen's copying model as an Ollama model: a GGUF plus a Modelfile whose template scripts the reply.

``build_tiny_ollama_gguf(path)`` writes the GGUF (2.7 MB of f32, byte-identical every time) and
``modelfile(gguf)`` the Modelfile that `ollama create` turns into a model. What a test can rely on,
from real Ollama 0.17.4 (through /api/chat or /v1/chat/completions), at any usual temperature:

- no tools: the reply is tinyqwen's ``GREETING`` (13 tokens), done_reason / finish_reason ``stop``;
- tools offered (``tool_choice`` is ignored by Ollama, so any value): one call to the *first*
  tool, its arguments an object holding each required parameter with a placeholder (``"test"``,
  ``0``, ``false``, ``[]``, ``{}``, ``null``, or the first ``enum`` value);
- last message from a ``tool``: ``TOOL_RESULT_PREFIX`` + the result if it is short printable ASCII
  with nothing JSON would escape, else "The tool returned a result."

How
---
The weights are tinyqwen's (see its docstring): one attention head that, by a RoPE phase trick,
copies the token exactly ``SCRIPT_SPAN`` positions back, and nothing else. The reply is scripted by
the template, not produced by any understanding: TEMPLATE (a Go text/template, which Ollama renders
for every chat) ends each prompt with the wanted reply in a system turn, then newline padding so the
reply's first token sits ``SCRIPT_SPAN`` tokens before the first generated one. The model then
writes it back token by token and stops on the copied ``<|im_end|>``. Everything Ollama does with
it is its real code path: rendering, tokenising, llama.cpp inference and sampling, and the tool-call
parser, which finds the ``<tool_call>`` tag (Ollama takes it from the first text after
``if .ToolCalls`` in this template) and turns the JSON after it into ``tool_calls``.

Format choices, checked against Ollama 0.17.4's sources:

- Architecture ``qwen2``. Not on Ollama's list of models its own engine must run
  (``OllamaEngineRequired``), so the bundled llama.cpp runs it, and llama.cpp applies NeoX-style
  RoPE to qwen2 (pair i = dims i and i + 32), the layout tinyqwen's weights are built for, with
  the q/k/v biases the copy head lives in. ``llama`` would rotate adjacent pairs instead. Ollama's
  own engine (``OLLAMA_NEW_ENGINE=1``) has a NeoX qwen2 too and gives the same replies.
- Tokenizer ``gpt2`` (byte-level BPE) over tinyqwen's 262 tokens: the 256 GPT-2 byte stand-ins
  and the tag tokens: ``<|im_start|>``/``<|im_end|>`` as control tokens, ``<|im_end|>`` the end
  of generation; the others user-defined, printed as their text, so the parser sees
  ``<tool_call>``. Every byte is one token, so Go's ``len`` (bytes) counts tokens, multi-byte
  characters included. llama.cpp insists on a merges list and gguf-py refuses an empty array, so
  the GGUF carries one inert merge (see ``_INERT_MERGE``).
- f32 throughout: the file is small and no rounding eats into the copy margin.

Limits. The call always names the first tool, and a call that would pass ``_CALL_LIMIT`` bytes is
written with arguments ``{}``. A tool name or enum value outside printable ASCII has no token slot
and is not copied faithfully; a name of over ~210 bytes overflows the span and the template fails
(Ollama answers 500). ``think`` is not scripted, and a trailing assistant message (prefill) is not
continued: the script follows it. A raw /api/generate prompt has no script: the model repeats
whatever stood ``SCRIPT_SPAN`` tokens back.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from .tinyqwen import (
    GREETING,
    HEAD_DIM,
    HIDDEN,
    IM_END,
    INTERMEDIATE,
    MAX_POSITIONS,
    N_HEADS,
    N_KV_HEADS,
    ROPE_THETA,
    SCRIPT_SPAN,
    TOOL_RESULT_PREFIX,
    vocabulary,
    weights,
)

ARCHITECTURE = "qwen2"
_RMS_EPS = 1e-6  # tinyqwen's config
# One merge of two multi-character symbols never applies: BPE starts from single characters and no
# other merge builds these. It only satisfies llama.cpp, which refuses a gpt2 vocabulary without one.
_INERT_MERGE = "<|im_start|> <|im_end|>"
_BYTE_TOKENS = 256  # ids 0-255 are the bytes; the tag tokens follow

# Scripts longer than these are not written (the span must hold them): same limits as tinyqwen's.
_ECHO_LIMIT = 120
_CALL_LIMIT = 160
# Tokens after the reply: <|im_end|>, the padding, <|im_start|> and "assistant\n" (1 + pad + 1 + 10).
_TAIL = 12
# <tool_call> and </tool_call> are one token each but 11 and 12 bytes: `len` overcounts a call by 21.
_CALL_TAG_EXTRA = 21


def _newlines(count: int) -> str:
    """A Go template string literal of ``count`` newlines."""
    return '"' + "\\n" * count + '"'


# The conversation, ChatML as Qwen 2.5 writes it: tools listed in the system turn, calls as
# <tool_call> JSON. Tools and arguments go through `json` / their String method: Ollama hands the
# template Go structs, which print as Go values otherwise. In the assistant turn the first text
# after `if .ToolCalls` must be "<tool_call>": Ollama's parser takes its tag from there.
_CONVERSATION = r"""
{{- if or .System .Tools }}<|im_start|>system
{{ if .System }}{{ .System }}{{ if .Tools }}

{{ end }}{{ end }}
{{- if .Tools }}# Tools
You may call these functions:
<tools>
{{ range .Tools }}{{ json . }}
{{ end }}</tools>
To call one, write:
<tool_call>
{"name": <name>, "arguments": <object>}
</tool_call>{{ end }}<|im_end|>
{{ end }}
{{- $role := "" }}{{ $content := "" }}
{{- range .Messages }}
{{- $role = .Role }}{{ $content = .Content }}
{{- if eq .Role "system" }}
{{- else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}
{{- if .ToolCalls }}{{ range .ToolCalls }}<tool_call>
{"name": {{ json .Function.Name }}, "arguments": {{ .Function.Arguments }}}
</tool_call>{{ end }}{{ end }}<|im_end|>
{{ else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ else }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}"""

# The script: the reply wanted, in a system turn, then padding to put it SCRIPT_SPAN tokens before
# the first generated token. `slice $pad (len $reply)` drops as many newlines as the reply has bytes,
# so each pad holds what the span leaves for a reply of no bytes. An echoed tool result must be
# printable ASCII (%+q escapes nothing) with nothing JSON escapes (no quote, backslash, < > &): a
# tag written in it would be one token, not its length, and shift the copy.
_SCRIPT = r"""
{{- $reply := "@GREETING@" }}{{ $pad := @PLAIN_PAD@ }}
{{- if eq $role "tool" }}
  {{- $reply = "The tool returned a result." }}
  {{- $quoted := print "\"" $content "\"" }}
  {{- $short := and $content (le (len $content) @ECHO_LIMIT@) }}
  {{- if and $short (eq (printf "%+q" $content) $quoted) (eq (json $content) $quoted) }}
    {{- $reply = print "@TOOL_RESULT_PREFIX@" $content }}
  {{- end }}
{{- else if .Tools }}
  {{- $fn := (index .Tools 0).Function }}
  {{- $args := "" }}
  {{- range $i, $key := $fn.Parameters.Required }}
    {{- $prop := index $fn.Parameters.Properties $key }}
    {{- $type := json $prop.Type }}
    {{- $value := "\"test\"" }}
    {{- if $prop.Enum }}{{ $value = json (index $prop.Enum 0) }}
    {{- else if or (eq $type "\"integer\"") (eq $type "\"number\"") }}{{ $value = "0" }}
    {{- else if eq $type "\"boolean\"" }}{{ $value = "false" }}
    {{- else if eq $type "\"array\"" }}{{ $value = "[]" }}
    {{- else if eq $type "\"object\"" }}{{ $value = "{}" }}
    {{- else if eq $type "\"null\"" }}{{ $value = "null" }}
    {{- end }}
    {{- if $i }}{{ $args = print $args ", " }}{{ end }}
    {{- $args = print $args (json $key) ": " $value }}
  {{- end }}
  {{- $head := print "{\"name\": " (json $fn.Name) ", \"arguments\": " }}
  {{- $call := print $head "{" $args "}}" }}
  {{- if gt (len $call) @CALL_LIMIT@ }}{{ $call = print $head "{}}" }}{{ end }}
  {{- $reply = print "<tool_call>\n" $call "\n</tool_call>" }}
  {{- $pad = @CALL_PAD@ }}
{{- end }}<|im_start|>system
{{ $reply }}<|im_end|>{{ slice $pad (len $reply) }}<|im_start|>assistant
"""

TEMPLATE = _CONVERSATION + (
    _SCRIPT.rstrip(" ")
    .replace("@GREETING@", GREETING)
    .replace("@TOOL_RESULT_PREFIX@", TOOL_RESULT_PREFIX)
    .replace("@ECHO_LIMIT@", str(_ECHO_LIMIT))
    .replace("@CALL_LIMIT@", str(_CALL_LIMIT))
    .replace("@PLAIN_PAD@", _newlines(SCRIPT_SPAN - _TAIL))
    .replace("@CALL_PAD@", _newlines(SCRIPT_SPAN - _TAIL + _CALL_TAG_EXTRA))
)

# No sampling options: the copied token leads by ~30 logits, so Ollama's defaults (temperature 0.8,
# or 1.0 on /v1 unless the request sets one; repeat penalty 1.1) cannot change a reply. num_predict
# only bounds a reply that went wrong: no script is longer than the span. The stops end a turn
# where ChatML does; <|im_end|> is also end of generation. One thread: a step of this model is far
# too small to split, and on a busy 2-core machine two threads spend their time waiting for each
# other (measured with other jobs running: ~2.5 s a tool call with two, ~0.1 s with one).
PARAMETERS: tuple[tuple[str, str], ...] = (
    ("num_thread", "1"),
    ("num_predict", str(SCRIPT_SPAN)),
    ("stop", '"<|im_end|>"'),
    ("stop", '"<|im_start|>"'),
)


def modelfile(gguf_path: Path) -> str:
    """The Modelfile for `ollama create`: the GGUF, TEMPLATE and PARAMETERs above."""
    if '"""' in TEMPLATE:
        raise AssertionError("TEMPLATE cannot contain the Modelfile's closing quotes")
    lines = [f"FROM {Path(gguf_path).resolve()}", f'TEMPLATE """{TEMPLATE}"""']
    lines += [f"PARAMETER {name} {value}" for name, value in PARAMETERS]
    return "\n".join(lines) + "\n"


# tinyqwen's Hugging Face tensor names -> GGUF's, for its single layer.
_TENSOR_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "model.layers.0.input_layernorm.weight": "blk.0.attn_norm.weight",
    "model.layers.0.post_attention_layernorm.weight": "blk.0.ffn_norm.weight",
    "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight",
    "model.layers.0.self_attn.q_proj.bias": "blk.0.attn_q.bias",
    "model.layers.0.self_attn.k_proj.weight": "blk.0.attn_k.weight",
    "model.layers.0.self_attn.k_proj.bias": "blk.0.attn_k.bias",
    "model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
    "model.layers.0.self_attn.v_proj.bias": "blk.0.attn_v.bias",
    "model.layers.0.self_attn.o_proj.weight": "blk.0.attn_output.weight",
    "model.layers.0.mlp.gate_proj.weight": "blk.0.ffn_gate.weight",
    "model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
    "model.layers.0.mlp.down_proj.weight": "blk.0.ffn_down.weight",
}


def _add_hyperparameters(writer: gguf.GGUFWriter) -> None:
    writer.add_name("stackgen-tinyollama")
    writer.add_context_length(MAX_POSITIONS)  # Ollama caps num_ctx here: the copy margin holds to 4096
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(1)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(_RMS_EPS)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)


def _add_tokenizer(writer: gguf.GGUFWriter) -> None:
    tokens = vocabulary()
    texts = [text for text, _ in tokens]
    # Tags that are not control tokens are user-defined: llama.cpp matches those in any text and
    # always prints them as written (control tokens only when asked), so <tool_call> reaches the parser.
    types = [gguf.TokenType.CONTROL if control else
             gguf.TokenType.USER_DEFINED if index >= _BYTE_TOKENS else gguf.TokenType.NORMAL
             for index, (_, control) in enumerate(tokens)]
    eos = texts.index(IM_END)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(texts)
    writer.add_token_types(types)
    writer.add_token_merges([_INERT_MERGE])
    writer.add_bos_token_id(eos)  # unused (no BOS is added), but gpt2's default id 11 is a byte
    writer.add_eos_token_id(eos)
    writer.add_pad_token_id(eos)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)


def build_tiny_ollama_gguf(path: Path) -> Path:
    """Write the GGUF to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = weights()
    if set(tensors) != set(_TENSOR_NAMES):
        raise AssertionError(f"tinyqwen's tensors changed: {sorted(set(tensors) ^ set(_TENSOR_NAMES))}")
    writer = gguf.GGUFWriter(str(path), ARCHITECTURE)
    _add_hyperparameters(writer)
    _add_tokenizer(writer)
    for name, array in tensors.items():
        # GGUF lists dimensions innermost first, so a numpy (out, in) matrix is stored as is.
        writer.add_tensor(_TENSOR_NAMES[name], np.ascontiguousarray(array, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
