{{/*
llama.cpp: the official server image's `/app/llama-server`, downloading a GGUF from Hugging Face into
the cache volume at start. Flags come from models.<key>.llamacpp as stackgen resolved them. Each
template takes {ctx: $, key: <model key>, model: <model values>}; see _model-pod.tpl.
*/}}

{{- define "inference-stack.llamacpp.port" -}}8080{{- end -}}

{{- define "inference-stack.llamacpp.args" -}}
{{- $l := dig "llamacpp" dict .model -}}
{{- $args := list "--host" "0.0.0.0" "--port" (include "inference-stack.llamacpp.port" .) -}}
{{- $args = concat $args (list "--hf-repo" (required (printf "models.%s.model is required" .key) (dig "model" "" .model))) -}}
{{- $args = concat $args (list "--hf-file" (required (printf "models.%s.llamacpp.file is required" .key) (dig "file" "" $l))) -}}
{{- $args = concat $args (list "--alias" .key) -}}
{{- with dig "ctxSize" 0 $l }}{{ $args = concat $args (list "--ctx-size" (int . | toString)) }}{{ end -}}
{{- $args = concat $args (list "--parallel" (int (dig "parallel" 1 $l) | toString)) -}}
{{- $args = concat $args (list "--n-gpu-layers" (int (dig "gpuLayers" 0 $l) | toString)) -}}
{{- if dig "jinja" false $l }}{{ $args = append $args "--jinja" }}{{ end -}}
{{- /* Prometheus metrics on /metrics, as vLLM serves them. */ -}}
{{- $args = append $args "--metrics" -}}
{{- range dig "args" list .model }}{{ $args = append $args (toString .) }}{{ end -}}
{{- toYaml $args -}}
{{- end -}}

{{- define "inference-stack.llamacpp.container" -}}
name: llamacpp
command: ["/app/llama-server"]
args:
  {{- include "inference-stack.llamacpp.args" . | nindent 2 }}
env:
  # Downloads land on the cache volume, so a restarted container does not fetch the file again.
  - name: LLAMA_CACHE
    value: /root/.cache/llama.cpp
probes: {startup: /health, readiness: /health, liveness: /health}
{{- end -}}

{{- define "inference-stack.llamacpp.mounts" -}}
- {name: cache, path: /root/.cache/llama.cpp}
{{- end -}}

{{- define "inference-stack.llamacpp.initContainers" -}}{{- end -}}

{{- define "inference-stack.llamacpp.volumes" -}}{{- end -}}
