{{/*
vLLM: `vllm serve <model>` with the flags stackgen resolved (models.<key>.vllm). Each template takes
{ctx: $, key: <model key>, model: <model values>}; see _model-pod.tpl for what each one answers.
*/}}

{{- define "inference-stack.vllm.port" -}}8000{{- end -}}

{{/* HF_HOME: the Hugging Face cache, where the model cache volume is mounted. */}}
{{- define "inference-stack.vllm.hfHome" -}}/root/.cache/huggingface{{- end -}}

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
{{- /* A group (models.<key>.group): each pod holds a pipeline stage, and they meet at the leader's address, which
LWS gives every pod of the group with its own index (LWS_LEADER_ADDRESS, LWS_WORKER_INDEX; the kubelet expands
$(NAME) from the container's env). Without Ray: vLLM's own multiprocessing executor, one per pod. */ -}}
{{- with dig "pipelineParallelSize" 0 $v }}
{{- $args = concat $args (list "--pipeline-parallel-size" (int . | toString) "--distributed-executor-backend" "mp") -}}
{{- $args = concat $args (list "--nnodes" (int . | toString) "--node-rank" "$(LWS_WORKER_INDEX)" "--master-addr" "$(LWS_LEADER_ADDRESS)") -}}
{{- end -}}
{{- /* A worker serves no calls: it runs its share of the model for the leader (`--headless`: no API server). */ -}}
{{- if eq (default "" .role) "worker" }}{{ $args = append $args "--headless" }}{{ end -}}
{{- with dig "dtype" "" $v }}{{ $args = concat $args (list "--dtype" .) }}{{ end -}}
{{- with dig "gpuMemoryUtilization" 0 $v }}{{ $args = concat $args (list "--gpu-memory-utilization" (toString .)) }}{{ end -}}
{{- with dig "toolCallParser" "" $v }}{{ $args = concat $args (list "--enable-auto-tool-choice" "--tool-call-parser" .) }}{{ end -}}
{{- with dig "reasoningParser" "" $v }}{{ $args = concat $args (list "--reasoning-parser" .) }}{{ end -}}
{{- with dig "loraModules" list $v }}
{{- $args = concat $args (list "--enable-lora" "--lora-modules") . -}}
{{- $args = concat $args (list "--max-loras" (dig "maxLoras" (len .) $v | int | toString)) -}}
{{- with dig "maxLoraRank" 0 $v }}{{ $args = concat $args (list "--max-lora-rank" (int . | toString)) }}{{ end -}}
{{- end -}}
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
    value: {{ include "inference-stack.vllm.hfHome" . }}
  {{- if and (dig "cache" "preload" list .model) (not (hasKey (dig "env" dict .model) "HF_HUB_OFFLINE")) }}
  # The preload Job filled the cache, which is read-only here: never reach for the Hub.
  - name: HF_HUB_OFFLINE
    value: "1"
  {{- end }}
{{- /* A group's worker answers no HTTP: its failures restart the group (RecreateGroupOnPodRestart), and the
leader's probes stand for it. */}}
{{- if ne (default "" .role) "worker" }}
probes:
  startup: /health
  readiness: /health
  liveness: /health
  {{- with dig "vllm" "loraModules" list .model }}
  # Ready only while the server lists every adapter: one it failed to load, or lost, keeps the pod out of
  # the Service (vLLM answers /health all the same). The names follow the script.
  readinessExec:
    - python3
    - -c
    - {{ include "inference-stack.vllm.listsAll" $ | quote }}
    {{- range . }}
    - {{ index (splitList "=" .) 0 | quote }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* A probe script: exit 0 when the server's /v1/models lists every name given after it. */}}
{{- define "inference-stack.vllm.listsAll" -}}
import json, sys, urllib.request
listed = {m["id"] for m in json.load(urllib.request.urlopen("http://127.0.0.1:{{ include "inference-stack.vllm.port" . }}/v1/models", timeout=4))["data"]}
missing = sorted(set(sys.argv[1:]) - listed)
print("not listed:", *missing) if missing else None
sys.exit(1 if missing else 0)
{{- end -}}

{{- define "inference-stack.vllm.mounts" -}}
- {name: shm, path: /dev/shm}
- {name: cache, path: {{ include "inference-stack.vllm.hfHome" . }}}
{{- end -}}

{{- define "inference-stack.vllm.initContainers" -}}{{- end -}}

{{/* cache.preload: the Hub client the image carries (huggingface_hub's `hf`), into the HF_HOME the server reads. */}}
{{- define "inference-stack.vllm.preload" -}}
download: [hf, download, --quiet]
env:
  - name: HF_HOME
    value: {{ include "inference-stack.vllm.hfHome" . }}
{{- end -}}

{{- define "inference-stack.vllm.volumes" -}}
# PyTorch shares tensors between worker processes through /dev/shm; the container runtime's
# default (64Mi) crashes vLLM, with or without tensor parallelism.
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ dig "shmSize" "2Gi" .model }}
{{- end -}}
