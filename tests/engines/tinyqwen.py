"""Build a tiny Qwen2-architecture model directory that real vLLM serves with deterministic replies.

Usage: python tests/engines/tinyqwen.py OUT_DIR   (any Python with numpy and tokenizers, e.g. the
vLLM virtualenv); or import it and call ``build_tiny_qwen(out_dir)``. Builds in well under a second,
byte-identical every time.

What a test can rely on (at any usual temperature: the scripted token leads by ~31 logits; see
"Limits" below):

- no tools: the reply is ``GREETING``, finish_reason ``stop``;
- tools, ``tool_choice`` auto/required/omitted: one call to the *first* tool, arguments an object
  holding each required parameter with a placeholder (``"test"``, ``0``, ``false``, ``[]``,
  ``{}``, ``null``, or the first ``enum`` value);
- last message from a ``tool``: ``TOOL_RESULT_PREFIX`` + the result (if it is short printable
  ASCII), so a round trip shows the result reached the model;
- ``chat_template_kwargs: {"enable_thinking": true}``: the plain replies above come after
  ``<think>...</think>``, which ``--reasoning-parser qwen3`` splits off. That parser takes a reply
  for reasoning unless ``enable_thinking`` is false, so with it send the flag either way.

Why the model copies instead of being random
--------------------------------------------
vLLM 0.32 with ``--tool-call-parser hermes`` serves ``tool_choice: "required"`` with a structural
tag (``VLLM_ENFORCE_STRICT_TOOL_CALLING``, on by default): the grammar spells the
``<tool_call>\\n{"name": "<tool>", "arguments": `` envelope, but unless a tool says ``"strict": true``
its arguments may be any JSON value. What the model prefers among the allowed tokens decides
whether they come out an object, a bare number or a string that never closes; under ``"auto"``
nothing is constrained and the model has to spell the tool's name itself. Logit biases (the
llama.cpp stack tests' trick) can make objects and closing quotes likely, not make a model
spell a name it has only seen in the prompt. So the chat template and the weights share the job:

- The template ends every prompt with a "script", the reply wanted above, then pads with
  newlines so the script starts exactly ``SCRIPT_SPAN`` tokens before the first generated token.
  The vocabulary is bytes without merges, so Jinja can count tokens with ``|length``.
- The weights do one thing: emit the token that stood ``SCRIPT_SPAN`` positions earlier. An
  attention head with constant queries and keys (biases only) whose rotary phases line up only at
  that distance finds it; one-hot embeddings carry its identity through the values, and the
  output head turns it into a logit ~30 above any other. The script ends in ``<|im_end|>``, so
  the copy stops by itself and finish_reason and usage are genuine.

The reply is thus fixed by what the template writes, while everything vLLM does with it
(tokenising, batching, the tool-call grammar, the hermes parser, streaming) is the real code path.

Position is the head's only clue, so the margin comes from RoPE: with a small ``rope_theta`` the
eight fastest rotary pairs score every wrong distance up to ``MAX_POSITIONS`` at least 27% below the
right one (distance +-1 is the closest call); amplitudes put that gap at ~32 attention logits, far
beyond what bfloat16 rounding (vLLM's CPU dtype) or 4096 competing keys can undo.

Limits. The script names the first tool, so a named ``tool_choice`` for another tool, a strict
schema the placeholders do not satisfy, or ``VLLM_ENFORCE_STRICT_TOOL_CALLING=0`` (a JSON-array
grammar instead of Hermes tags) make the grammar refuse scripted tokens and the copy slips. A weak
fallback under the copy signal (``}`` before ``]`` before ``{`` before ``"`` before end-of-turn, and
"close a string just opened") keeps such replies short and closed, but they are not the script
and may not be objects. With ``tool_choice: "none"`` the call comes back as plain content.
``/v1/completions`` has no script: it returns noise until ``max_tokens``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

# Shapes. Six 64-wide heads (vLLM's CPU attention wants head_dim 64) in a 384-wide residual stream
# laid out as: [0, 128) the current token (one-hot), [128, 256) the copied token, 256 a constant.
# 128 one-hot slots cover printable ASCII and the tag tokens; two KV heads carry 64 slots each.
HEAD_DIM = 64
N_HEADS = 6
N_KV_HEADS = 2
HIDDEN = N_HEADS * HEAD_DIM
INTERMEDIATE = 64
CODE = 128  # one-hot slots; every token a script can contain needs one
COPY_OFFSET = CODE  # start of the copied-token block
_CONST = 2 * CODE  # the constant unit
MAX_POSITIONS = 4096  # the chart serves with --max-model-len 4096
ROPE_THETA = 20.0
# Rotary pairs the copy head uses: the fastest ones. With theta 20, eight pairs leave every wrong
# distance in [1, 4096] at least 27% below the right one (measured; the closest call is distance 1).
_ROPE_PAIRS = 8

# The script starts this many tokens before the first generated token (see the template).
SCRIPT_SPAN = 256
_ATTENTION_SCALE = HEAD_DIM**-0.5
_PEAK_SCORE = 120.0  # attention logit on the scripted position; the runner-up is >= 32 lower

# Output logits.
_COPY_LOGIT = 40.0
_NEVER = -20.0  # tokens no script contains (control bytes, non-ASCII bytes, <|im_start|>)
_FALLBACK = {"}": 8.0, "]": 7.0, "{": 6.0, '"': 5.0, ",": 3.0, "0": 2.0, " ": -1.0, "\n": -1.0}
_EOT_FALLBACK = 4.0
_QUOTE_AFTER_QUOTE = 4.0

# Token ids 0..255 are the bytes themselves; the special and tag tokens follow.
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
THINK, THINK_END = "<think>", "</think>"
_ADDED = [IM_START, IM_END, TOOL_CALL, TOOL_CALL_END, THINK, THINK_END]
_CONTROL = {IM_START, IM_END}  # the rest are text, as in Qwen's tokenizer: grammars may emit them
VOCAB_SIZE = 256 + len(_ADDED)
_SPEAKABLE_BYTES = [0x09, 0x0A] + list(range(0x20, 0x7F))

# 13 tokens and the end of turn: a chat capped at max_tokens 16 (verify.py) still ends with "stop".
GREETING = "Hi, tinyqwen."
TOOL_RESULT_PREFIX = "The tool returned: "
_THOUGHT = "The reply is scripted."
_ECHO_LIMIT = 120  # longer tool results are not echoed, so the script always fits the span
_CALL_LIMIT = 160  # a call with placeholder arguments longer than this falls back to {}

# Jinja, built as one expression stream (every tag trims whitespace) so newlines are explicit.
# Tools are listed in the system turn as Qwen 2.5 does; the last block is the script and its padding.
# Token counts subtract len(tag) - 1 for every tag token, since a tag is one token but many chars.
CHAT_TEMPLATE = (
    r"""
{%- set ns = namespace(system='') -%}
{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}
{%- if tools -%}
  {{- '<|im_start|>system\n' -}}
  {%- if ns.system -%}{{- ns.system ~ '\n\n' -}}{%- endif -%}
  {{- '# Tools\nYou may call these functions:\n<tools>\n' -}}
  {%- for tool in tools -%}{{- (tool | tojson) ~ '\n' -}}{%- endfor -%}
  {{- '</tools>\nTo call one, write:\n' -}}
  {{- '<tool_call>\n{"name": <name>, "arguments": <object>}\n</tool_call><|im_end|>\n' -}}
{%- elif ns.system -%}
  {{- '<|im_start|>system\n' ~ ns.system ~ '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
  {%- if loop.first and message.role == 'system' -%}
  {%- elif message.role == 'assistant' -%}
    {{- '<|im_start|>assistant\n' ~ (message.content or '') -}}
    {%- for call in (message.tool_calls or []) -%}
      {%- set fn = call.function if call.function is defined else call -%}
      {%- set args = fn.arguments if fn.arguments is string else (fn.arguments | tojson) -%}
      {%- if message.content or not loop.first -%}{{- '\n' -}}{%- endif -%}
      {{- '<tool_call>\n{"name": ' ~ (fn.name | tojson) ~ ', "arguments": ' ~ args ~ '}\n</tool_call>' -}}
    {%- endfor -%}
    {{- '<|im_end|>\n' -}}
  {%- elif message.role == 'tool' -%}
    {{- '<|im_start|>user\n<tool_response>\n' ~ (message.content or '') ~ '\n</tool_response><|im_end|>\n' -}}
  {%- else -%}
    {{- '<|im_start|>' ~ message.role ~ '\n' ~ (message.content or '') ~ '<|im_end|>\n' -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {%- set last = messages[-1] if messages else {} -%}
  {%- set s = namespace(reply='', tags=0, call=false) -%}
  {%- if last.role == 'tool' -%}
    {%- set result = last.content if last.content is string else '' -%}
    {%- if result and result | length <= @ECHO_LIMIT@ and result.isascii() and result.isprintable() -%}
      {%- set s.reply = '@TOOL_RESULT_PREFIX@' ~ result -%}
    {%- else -%}
      {%- set s.reply = 'The tool returned a result.' -%}
    {%- endif -%}
  {%- elif tools -%}
    {%- set fn = tools[0].function if tools[0].function is defined else tools[0] -%}
    {%- set params = fn.parameters if fn.parameters is mapping else {} -%}
    {%- set props = params.get('properties') if params.get('properties') is mapping else {} -%}
    {%- set required = params.get('required') or [] -%}
    {%- set a = namespace(items=[]) -%}
    {%- for key, prop in props.items() if key in required -%}
      {%- set prop = prop if prop is mapping else {} -%}
      {%- set kind = prop.get('type') -%}
      {%- if prop.get('enum') -%}{%- set value = prop['enum'][0] | tojson -%}
      {%- elif 'const' in prop -%}{%- set value = prop['const'] | tojson -%}
      {%- elif kind == 'integer' or kind == 'number' -%}{%- set value = '0' -%}
      {%- elif kind == 'boolean' -%}{%- set value = 'false' -%}
      {%- elif kind == 'array' -%}{%- set value = '[]' -%}
      {%- elif kind == 'object' -%}{%- set value = '{}' -%}
      {%- elif kind == 'null' -%}{%- set value = 'null' -%}
      {%- else -%}{%- set value = '"test"' -%}
      {%- endif -%}
      {%- set a.items = a.items + [(key | tojson) ~ ': ' ~ value] -%}
    {%- endfor -%}
    {%- set call = '{"name": ' ~ (fn.name | tojson) ~ ', "arguments": {' ~ (a.items | join(', ')) ~ '}}' -%}
    {%- if call | length > @CALL_LIMIT@ -%}
      {%- set call = '{"name": ' ~ (fn.name | tojson) ~ ', "arguments": {}}' -%}
    {%- endif -%}
    {%- set s.reply = '<tool_call>\n' ~ call ~ '\n</tool_call>' -%}
    {%- set s.tags = 21 -%}
    {%- set s.call = true -%}
  {%- else -%}
    {%- set s.reply = '@GREETING@' -%}
  {%- endif -%}
  {#- Calls never think: under tool_choice=required the grammar starts the reply at <tool_call>, and
      a refused <think> would shift the copy by a whole block. -#}
  {%- if enable_thinking is defined and enable_thinking and not s.call -%}
    {%- set s.reply = '<think>@THOUGHT@</think>' ~ s.reply -%}
    {%- set s.tags = s.tags + 13 -%}
  {%- endif -%}
  {{- '<|im_start|>system\n' ~ s.reply ~ '<|im_end|>' -}}
  {{- '\n' * (@SPAN@ - (s.reply | length - s.tags) - 12) -}}
  {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
""".strip()
    .replace("@ECHO_LIMIT@", str(_ECHO_LIMIT))
    .replace("@CALL_LIMIT@", str(_CALL_LIMIT))
    .replace("@GREETING@", GREETING)
    .replace("@TOOL_RESULT_PREFIX@", TOOL_RESULT_PREFIX)
    .replace("@THOUGHT@", _THOUGHT)
    .replace("@SPAN@", str(SCRIPT_SPAN))
)
# The 12 above: <|im_end|> closing the script, then <|im_start|> and "assistant\n" (1 + 1 + 10).
# The 21 and 13: <tool_call>/</tool_call> are 11 and 12 chars, <think>/</think> 7 and 8.


def _byte_chars() -> list[str]:
    """GPT-2's byte-to-unicode table: printable stand-ins for the 256 bytes, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _tokenizer() -> Tokenizer:
    # No merges: every byte is its own token, so a string's token count is its byte count.
    vocab = {char: b for b, char in enumerate(_byte_chars())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken(t, special=t in _CONTROL, normalized=False) for t in _ADDED])
    return tok


def token_id(text: str) -> int:
    return 256 + _ADDED.index(text) if text in _ADDED else text.encode()[0]


def vocabulary() -> list[tuple[str, bool]]:
    """Every token's text in id order, and whether it is a control token: GPT-2's printable stand-ins
    for bytes 0-255, then the tag tokens. For writers of other formats (tinyollama.py's GGUF)."""
    return [(char, False) for char in _byte_chars()] + [(tag, tag in _CONTROL) for tag in _ADDED]


def token_slots() -> dict[int, int]:
    """One-hot slot for every token a script may contain."""
    ids = _SPEAKABLE_BYTES + [token_id(t) for t in _ADDED]
    assert len(ids) <= CODE
    return {token: slot for slot, token in enumerate(ids)}


def _weights() -> dict[str, np.ndarray]:
    slots = token_slots()
    f32 = np.float32

    # Embeddings: the token's slot plus the constant unit, both 1. Tokens without a slot carry only
    # the constant: nothing copies them.
    embed = np.zeros((VOCAB_SIZE, HIDDEN), f32)
    for token, slot in slots.items():
        embed[token, slot] = 1.0
    embed[:, _CONST] = 1.0
    # RMSNorm divides by sqrt(mean square): 2 units of 1 over HIDDEN dims before attention, 3 after.
    norm_in = np.sqrt(HIDDEN / 2.0)
    norm_out = np.sqrt(HIDDEN / 3.0)

    # Copy heads: q head 0 reads kv head 0 (slots 0-63), q head 3 reads kv head 1 (slots 64-127).
    # Under neox-style RoPE, pair i of a head is dims (i, i + 32), rotated by position * theta_i. A
    # constant query (a, 0) against a constant key b(cos d*theta_i, sin d*theta_i) scores
    # a*b*cos((distance - d) * theta_i): highest exactly at distance d.
    delay = SCRIPT_SPAN - 1  # the last prompt token looks at the script's first token, and so on
    thetas = ROPE_THETA ** (-np.arange(_ROPE_PAIRS) * 2.0 / HEAD_DIM)
    amplitude = np.sqrt(_PEAK_SCORE / (_ROPE_PAIRS * _ATTENTION_SCALE))
    half = HEAD_DIM // 2
    query = np.zeros(HEAD_DIM, f32)
    query[:_ROPE_PAIRS] = amplitude
    key = np.zeros(HEAD_DIM, f32)
    key[:_ROPE_PAIRS] = amplitude * np.cos(delay * thetas)
    key[half : half + _ROPE_PAIRS] = amplitude * np.sin(delay * thetas)

    q_bias = np.zeros(N_HEADS * HEAD_DIM, f32)
    k_bias = np.zeros(N_KV_HEADS * HEAD_DIM, f32)
    v_weight = np.zeros((N_KV_HEADS * HEAD_DIM, HIDDEN), f32)
    o_weight = np.zeros((HIDDEN, N_HEADS * HEAD_DIM), f32)
    group = N_HEADS // N_KV_HEADS
    for kv in range(N_KV_HEADS):
        head = kv * group
        q_bias[head * HEAD_DIM : (head + 1) * HEAD_DIM] = query
        k_bias[kv * HEAD_DIM : (kv + 1) * HEAD_DIM] = key
        for j in range(HEAD_DIM):
            v_weight[kv * HEAD_DIM + j, kv * HEAD_DIM + j] = 1.0 / norm_in  # back to a unit one-hot
            o_weight[COPY_OFFSET + kv * HEAD_DIM + j, head * HEAD_DIM + j] = 1.0  # the other heads write nothing

    # Output head: the copied slot, far above the rest; then the constant preferences and the bigram.
    head_w = np.zeros((VOCAB_SIZE, HIDDEN), f32)
    for token, slot in slots.items():
        head_w[token, COPY_OFFSET + slot] = _COPY_LOGIT / norm_out
    prefs = np.full(VOCAB_SIZE, _NEVER, f32)
    prefs[list(slots)] = 0.0
    for char, logit in _FALLBACK.items():
        prefs[token_id(char)] = logit
    prefs[token_id(IM_END)] = _EOT_FALLBACK
    prefs[token_id(IM_START)] = _NEVER
    head_w[:, _CONST] = prefs / norm_out
    quote = token_id('"')
    head_w[quote, slots[quote]] = _QUOTE_AFTER_QUOTE / norm_out

    p = "model.layers.0."
    return {
        "model.embed_tokens.weight": embed,
        p + "input_layernorm.weight": np.ones(HIDDEN, f32),
        p + "self_attn.q_proj.weight": np.zeros((N_HEADS * HEAD_DIM, HIDDEN), f32),
        p + "self_attn.q_proj.bias": q_bias,
        p + "self_attn.k_proj.weight": np.zeros((N_KV_HEADS * HEAD_DIM, HIDDEN), f32),
        p + "self_attn.k_proj.bias": k_bias,
        p + "self_attn.v_proj.weight": v_weight,
        p + "self_attn.v_proj.bias": np.zeros(N_KV_HEADS * HEAD_DIM, f32),
        p + "self_attn.o_proj.weight": o_weight,
        p + "post_attention_layernorm.weight": np.ones(HIDDEN, f32),
        # The MLP writes nothing: gate and down are zero.
        p + "mlp.gate_proj.weight": np.zeros((INTERMEDIATE, HIDDEN), f32),
        p + "mlp.up_proj.weight": np.zeros((INTERMEDIATE, HIDDEN), f32),
        p + "mlp.down_proj.weight": np.zeros((HIDDEN, INTERMEDIATE), f32),
        "model.norm.weight": np.ones(HIDDEN, f32),
        "lm_head.weight": head_w,
    }


def weights() -> dict[str, np.ndarray]:
    """The tensors in float32 under their Hugging Face names, before build_tiny_qwen rounds them to
    bfloat16. For writers of other formats (tinyollama.py's GGUF)."""
    return _weights()


def _config() -> dict[str, object]:
    eos = token_id(IM_END)
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": 1,
        "num_attention_heads": N_HEADS,
        "num_key_value_heads": N_KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-6,
        # Both spellings: transformers 5 reads rope_parameters, older readers rope_theta.
        "rope_theta": ROPE_THETA,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": eos,
        "eos_token_id": eos,
    }


def _tokenizer_config() -> dict[str, object]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_POSITIONS,
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": IM_END,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {
            str(token_id(t)): {
                "content": t, "lstrip": False, "rstrip": False, "normalized": False,
                "single_word": False, "special": t in _CONTROL,
            }
            for t in _ADDED
        },
    }


def _save_bf16(tensors: dict[str, np.ndarray], path: Path) -> None:
    """Write a safetensors file in bfloat16, the dtype vLLM's CPU backend runs in.

    numpy has no bfloat16 and torch is slow to import, so the format (a length-prefixed JSON
    header, then raw little-endian data) is written directly. Storing bf16 rather than f32 halves
    the file and spares vLLM a cast warning per tensor; the margins above are sized for bf16.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        bits = np.ascontiguousarray(array, np.float32).view(np.uint32)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")  # round to nearest even
        blob = rounded.tobytes()
        end = offset + len(blob)
        header[name] = {"dtype": "BF16", "shape": list(array.shape), "data_offsets": [offset, end]}
        blobs.append(blob)
        offset = end
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(len(head).to_bytes(8, "little"))
        out.write(head)
        for blob in blobs:
            out.write(blob)


def build_tiny_qwen(out_dir: Path) -> Path:
    """Write the model directory (config, weights, tokenizer, generation config) and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_bf16(_weights(), out_dir / "model.safetensors")
    _tokenizer().save(str(out_dir / "tokenizer.json"))
    eos = token_id(IM_END)
    files = {
        "config.json": _config(),
        "tokenizer_config.json": _tokenizer_config(),
        "special_tokens_map.json": {"eos_token": IM_END, "pad_token": IM_END},
        # No sampling defaults: the copy margin makes replies the same at any temperature.
        "generation_config.json": {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos},
    }
    for name, content in files.items():
        (out_dir / name).write_text(json.dumps(content, indent=2) + "\n")
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    print(build_tiny_qwen(Path(sys.argv[1])))
