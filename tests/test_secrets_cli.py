"""`stackgen secrets` (#36): every Secret a stack reads, before the install, with the line that creates it. That the
list is exactly what the rendered objects read is a property (tests/test_invariants.py); that its lines work, as
the READMEs give them, is the control-plane tier's (tests/cluster/test_readme_commands.py)."""

from __future__ import annotations

from click.testing import CliRunner

from stackgen.cli import cli


def test_each_secret_gets_one_line_with_every_key_and_each_key_says_what_reads_it() -> None:
    result = CliRunner().invoke(cli, ["secrets", "gpu-fleet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Two models read one token: one key, both purposes, one line to create it.
    assert [ln for ln in lines if ln.startswith("  hf-token / token: ")] == [
        "  hf-token / token: llama-70b: a Hugging Face token that may download meta-llama/Llama-3.3-70B-Instruct; "
        "mistral-7b: a Hugging Face token that may download mistralai/Mistral-7B-Instruct-v0.3"]
    creates = [ln.strip() for ln in lines if ln.strip().startswith("kubectl ")]
    assert creates == [
        'kubectl -n llm create secret generic fleet-litellm-master-key --from-literal=master-key="sk-$(openssl rand '
        '-hex 24)"',
        'kubectl -n llm create secret generic fleet-redis-password --from-literal=password="$(openssl rand -hex 24)"',
        "kubectl -n llm create secret tls llm-example-com-tls --cert=<certificate file> --key=<key file>",
        'kubectl -n llm create secret generic hf-token --from-literal=token="$HF_TOKEN"',
    ]


def test_a_provider_key_is_filled_from_the_variable_the_gateway_reads_it_by() -> None:
    result = CliRunner().invoke(cli, ["secrets", "hybrid"])
    assert result.exit_code == 0, result.output
    assert 'kubectl -n agents create secret generic mistral-api --from-literal=api-key="$MISTRAL_LARGE_API_KEY"' \
        in result.output
    assert "  mistral-api / api-key: mistral-large: mistral's API key\n" in result.output
