"""Build a tiny llama-architecture GGUF so the stack tests need no download.

The weights are random, so the model's text is noise; the tests only rely on it being a well-formed
model that llama.cpp loads and serves through its OpenAI-compatible API (chat template, usage
accounting, model listing, tool calls).

Tool calls need more than noise. llama.cpp reads the chat template to learn the model's tool-call
format (here `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, as Qwen 2.5 and Hermes use) and,
for `tool_choice: required`, constrains sampling with a grammar of that format. The grammar lets
free text come first and leaves string lengths open, so a uniformly random model would babble for
hundreds of tokens before it happened to open a call, close a string or end its turn. Three fixed
"steering" units in the weights make those choices likely without fixing any output:

- a constant unit in every embedding, read by the output head as a mild preference for the
  `<tool_call>` token and for `"`, and as a dislike of anything but printable ASCII;
- a unit set only in the embedding of `>`, read by the head as a strong preference for end-of-text,
  so a turn ends right after the closing `</tool_call>` tag (and, rarely, after a `>` in plain text).

The layers never write these units (their output rows are zero), so the head sees them unchanged.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

# Small enough to load and answer in milliseconds on one CPU core, large enough that llama.cpp
# accepts the shapes (head_dim must be even for RoPE).
N_EMBD = 64
N_HEAD = 4
N_LAYER = 2
N_FF = 128
# A tool-calling prompt (tool schemas rendered by the template, one byte a token) is ~500 tokens.
CONTEXT_LENGTH = 4096

# One token for the opener, newline included: "<tool_call>" alone is also valid free text in front
# of a call, and the grammar only commits to a call once the newline follows.
TOOL_CALL_OPEN = "<tool_call>\n"

# ChatML turns; tools are listed in a system turn and calls are written as JSON in <tool_call> tags.
# llama.cpp's Jinja engine renders this for /v1/chat/completions and derives its tool-call parser
# and grammar from how the template writes tools and calls.
CHAT_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nYou can call these functions:\n<tools>\n"
    "{%- for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    "To call one, write <tool_call>\n{\"name\": <name>, \"arguments\": <arguments>}\n</tool_call>"
    "<|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    "{%- for call in message.tool_calls %}<tool_call>\n"
    "{\"name\": \"{{ call.function.name }}\", \"arguments\": {{ call.function.arguments | tojson }}}\n"
    "</tool_call>{% endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n"
    "</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# SentencePiece token types as llama.cpp reads them.
_TYPE_UNKNOWN = 2
_TYPE_CONTROL = 3
_TYPE_NORMAL = 1
_TYPE_BYTE = 6
_EOS = 2
_FIRST_BYTE = 3

# Steering units (embedding dimensions) and the logit boosts they carry.
_BIAS_UNIT = 0
_END_OF_TAG_UNIT = 1
_MILD_BOOST = 3.0  # a few percent per step: calls open and strings close within tens of tokens
_END_BOOST = 20.0  # after `>`, end-of-text wins over everything the grammar allows
# The grammar allows more than llama.cpp's parser of the reply then accepts: whitespace between
# JSON tokens, several calls in one tag joined by ",", bytes that are not UTF-8. A real model writes
# none of these there; keep the random model to printable ASCII without "," and spaces.
_PENALTY = -8.0
_AVOIDED = [b for b in range(256) if b < 0x21 or b >= 0x7F or b == ord(",")]


def _byte_token(char: str) -> int:
    return _FIRST_BYTE + ord(char)


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    # Byte-level SPM: every input byte maps to a <0xNN> token via byte fallback, so any text
    # tokenizes without merges. The call opener is one user-defined token, so one sampling step
    # opens a call.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [TOOL_CALL_OPEN]
    scores = [0.0] * len(tokens)
    types = [_TYPE_UNKNOWN, _TYPE_CONTROL, _TYPE_CONTROL] + [_TYPE_BYTE] * 256 + [_TYPE_NORMAL]
    return tokens, scores, types


def build_tiny_gguf(path: str | Path, seed: int = 0) -> Path:
    """Write a random-weight llama GGUF (about a megabyte) to ``path`` and return it."""
    path = Path(path)
    tokens, scores, types = _vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        # GGUF stores dims reversed: a numpy (out, in) matrix is ggml's (in, out).
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def layer_output(*shape: int) -> np.ndarray:
        # Projections back into the residual stream leave the steering units alone.
        w = weight(*shape)
        w[[_BIAS_UNIT, _END_OF_TAG_UNIT], :] = 0.0
        return w

    embeddings = weight(n_vocab, N_EMBD)
    embeddings[:, _BIAS_UNIT] = 1.0
    embeddings[:, _END_OF_TAG_UNIT] = 0.0
    embeddings[_byte_token(">"), _END_OF_TAG_UNIT] = 1.0

    # After the final RMS norm the bias unit reads about sqrt(N_EMBD) (it dominates the vector's
    # norm), and the end-of-tag unit about 0.7 of that; scale the head so the boosts come out as set.
    unit = float(np.sqrt(N_EMBD))
    head = weight(n_vocab, N_EMBD)
    head[:, [_BIAS_UNIT, _END_OF_TAG_UNIT]] = 0.0
    for boosted in (tokens.index(TOOL_CALL_OPEN), _byte_token('"')):
        head[boosted, _BIAS_UNIT] = _MILD_BOOST / unit
    for avoided in _AVOIDED:
        head[_FIRST_BYTE + avoided, _BIAS_UNIT] = _PENALTY / unit
    # End-of-text only after `>`, so no reply is empty.
    head[_EOS, _BIAS_UNIT] = _PENALTY / unit
    head[_EOS, _END_OF_TAG_UNIT] = _END_BOOST / (unit * np.sqrt(0.5))

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("stackgen-tiny-test")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(_EOS)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    # Without a space prefix the template's "<|im_start|>assistant\n" tokenizes to exactly its bytes,
    # which llama.cpp feeds to the tool-call grammar before sampling; a prefix would not match it.
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", embeddings)
    for i in range(N_LAYER):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v"):
            writer.add_tensor(f"{blk}.{name}.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{blk}.attn_output.weight", layer_output(N_EMBD, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_down.weight", layer_output(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", head)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
