"""The commented starter spec that `stackgen init` writes. A test renders it, so it always works."""

STARTER = """\
# A stackgen stack spec. Render it with: stackgen render stack.yaml -o out
# Field reference: docs/spec.md; JSON Schema for editors: stackgen schema

# Prefixes every Kubernetes object; lower-case letters, digits and '-'.
name: my-stack
# Namespace the stack is installed into (helm install -n ...).
namespace: llm

gateway:                 # the LiteLLM proxy agents talk to (OpenAI API)
  replicas: 2
  # The gateway's master key lives in a Secret you create first:
  #   kubectl -n llm create secret generic my-stack-litellm-master-key --from-literal=master-key=sk-...
  masterKey: {secretName: my-stack-litellm-master-key, key: master-key}
  # ingress: {host: llm.example.com, className: nginx, tlsSecretName: llm-tls}

autogen:
  # Agents read the gateway key from this environment variable.
  apiKeyEnv: OPENAI_API_KEY

profiles:                # where model servers run
  cpu:
    cpu: "2"
    memory: 4Gi
  # l4:
  #   gpu: {resource: nvidia.com/gpu, count: 1, memoryGiB: 24}
  #   cpu: "4"
  #   memory: 32Gi
  #   nodeSelector: {cloud.google.com/gke-accelerator: nvidia-l4}
  #   tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]

models:
  - name: small          # the name agents ask for
    engine: ollama       # one of the engines docs/spec.md lists (vllm, ollama, external, ...)
    model: qwen2.5:0.5b
    profile: cpu
    toolCalling: true
    tags: [default]
  # - name: qwen-7b
  #   engine: vllm
  #   model: Qwen/Qwen2.5-7B-Instruct
  #   profile: l4
  #   maxModelLen: 8192
  #   toolCalling: true
  # - name: mistral-large
  #   engine: external
  #   provider: mistral
  #   model: mistral-large-latest
  #   apiKey: {secretName: mistral-api, key: api-key}
"""
