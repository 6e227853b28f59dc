{{/*
vLLM: `vllm serve <model>` with the flags stackgen resolved (models.<key>.vllm). Each template takes
{ctx: $, key: <model key>, model: <model values>}; see _model-pod.tpl for what each one answers.
*/}}

{{- define "inference-stack.vllm.port" -}}8000{{- end -}}

{{/* Arguments after `vllm serve`: the model, its served name, then the resolved flags, then extra args. */}}
{{- define "inference-stack.vllm.args" -}}
{{- $v := dig "vllm" dict .model -}}
{{- $args := list (required (printf "models.%s.model is required" .key) (dig "model" "" .model)) -}}
{{- $args = concat $args (list "--served-model-name" .key "--host" "0.0.0.0" "--port" (include "inference-stack.vllm.port" .)) -}}
{{- /* Each reply's usage says how many prompt tokens came from the prefix cache: `stackgen verify` reads it. */ -}}
{{- $args = append $args "--enable-prompt-tokens-details" -}}
{{- /* On SIGTERM, finish the calls in flight (vLLM's default, 0, aborts them). */ -}}
{{- with dig "shutdown" "drainSeconds" 0 .model }}{{ $args = concat $args (list "--shutdown-timeout" (int . | toString)) }}{{ end -}}
{{- with dig "maxModelLen" 0 $v }}{{ $args = concat $args (list "--max-model-len" (int . | toString)) }}{{ end -}}
{{- with dig "tensorParallelSize" 0 $v }}{{ $args = concat $args (list "--tensor-parallel-size" (int . | toString)) }}{{ end -}}
{{- with dig "dtype" "" $v }}{{ $args = concat $args (list "--dtype" .) }}{{ end -}}
{{- with dig "gpuMemoryUtilization" 0 $v }}{{ $args = concat $args (list "--gpu-memory-utilization" (toString .)) }}{{ end -}}
{{- with dig "toolCallParser" "" $v }}{{ $args = concat $args (list "--enable-auto-tool-choice" "--tool-call-parser" .) }}{{ end -}}
{{- with dig "reasoningParser" "" $v }}{{ $args = concat $args (list "--reasoning-parser" .) }}{{ end -}}
{{- range dig "args" list .model }}{{ $args = append $args (toString .) }}{{ end -}}
{{- toYaml $args -}}
{{- end -}}

{{- define "inference-stack.vllm.container" -}}
name: vllm
command: ["vllm", "serve"]
args:
  {{- include "inference-stack.vllm.args" . | nindent 2 }}
env:
  # The model cache volume is mounted here, so downloads survive container restarts.
  - name: HF_HOME
    value: /root/.cache/huggingface
probes: {startup: /health, readiness: /health, liveness: /health}
{{- end -}}

{{- define "inference-stack.vllm.mounts" -}}
- {name: shm, path: /dev/shm}
- {name: cache, path: /root/.cache/huggingface}
{{- end -}}

{{- define "inference-stack.vllm.initContainers" -}}{{- end -}}

{{- define "inference-stack.vllm.volumes" -}}
# PyTorch shares tensors between worker processes through /dev/shm; the container runtime's
# default (64Mi) crashes vLLM, with or without tensor parallelism.
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ dig "shmSize" "2Gi" .model }}
{{- end -}}
