{{/*
Ollama: `ollama serve`, its model pulled by an init container first, so the pod is only Ready once the
model is on disk (a postStart hook would race the readiness probe and not block on failure). Each
template takes {ctx: $, key: <model key>, model: <model values>}; see _model-pod.tpl.
*/}}

{{- define "inference-stack.ollama.port" -}}11434{{- end -}}

{{- define "inference-stack.ollama.container" -}}
{{- $o := dig "ollama" dict .model -}}
name: ollama
command: ["/bin/ollama"]
args:
  {{- toYaml (concat (list "serve") (dig "args" list .model)) | nindent 2 }}
env:
  - name: OLLAMA_HOST
    value: "0.0.0.0:{{ include "inference-stack.ollama.port" . }}"
  {{- with dig "contextLength" 0 $o }}
  - name: OLLAMA_CONTEXT_LENGTH
    value: {{ int . | toString | quote }}
  {{- end }}
  {{- with dig "keepAlive" "" $o }}
  - name: OLLAMA_KEEP_ALIVE
    value: {{ toString . | quote }}
  {{- end }}
probes:
  startup: /api/version
  # Started means the model is in memory, not only that the server answers: `ollama run MODEL ""`
  # loads it and exits 0 without generating. With OLLAMA_KEEP_ALIVE -1 it then stays loaded, so the
  # first agent call does not pay the load. The init container has put the model on disk already.
  startupExec: ["/bin/ollama", "run", {{ dig "model" "" .model | quote }}, ""]
  readiness: /api/version
  liveness: /
{{- end -}}

{{- define "inference-stack.ollama.mounts" -}}
- {name: cache, path: /root/.ollama}
{{- end -}}

{{- define "inference-stack.ollama.initContainers" -}}
{{- $image := fromYaml (include "inference-stack.modelImage" .) -}}
{{- $o := dig "ollama" dict .model -}}
- name: pull-model
  image: {{ include "inference-stack.imageRef" (dict "ctx" .ctx "image" $image) | quote }}
  imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
  command: ["/bin/sh", "-c"]
  args:
    - |
      set -eu
      ollama serve &
      server=$!
      # Stop the temporary server however the script ends, a failed pull included.
      trap 'kill "$server" 2>/dev/null || true' EXIT
      tries=0
      until ollama list >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 120 ]; then
          echo "ollama serve did not start within 120s" >&2
          exit 1
        fi
        sleep 1
      done
      ollama pull{{ if dig "insecure" false $o }} --insecure{{ end }} "$OLLAMA_MODEL"
      kill "$server"
      wait "$server" || true
  env:
    {{- with include "inference-stack.plainEnv" (dig "env" dict .model) }}{{ . | nindent 4 }}{{ end }}
    {{- with include "inference-stack.secretEnv" (dig "secretEnv" dict .model) }}{{ . | nindent 4 }}{{ end }}
    # Only this pod talks to the temporary server.
    - name: OLLAMA_HOST
      value: "127.0.0.1:{{ include "inference-stack.ollama.port" . }}"
    # Pulling needs no GPU; without this the image's NVIDIA_VISIBLE_DEVICES=all would expose every
    # GPU of the node to this container on runtimes that honour it.
    - name: NVIDIA_VISIBLE_DEVICES
      value: "none"
    - name: OLLAMA_MODEL
      value: {{ required (printf "models.%s.model is required" .key) (dig "model" "" .model) | quote }}
    {{- include "inference-stack.writableEnv" . | nindent 4 }}
  resources:
    {{- include "inference-stack.modelResourcesNoGpu" . | nindent 4 }}
  volumeMounts:
    - name: cache
      mountPath: /root/.ollama
    {{- include "inference-stack.writableMounts" . | nindent 4 }}
  securityContext:
    {{- include "inference-stack.containerSecurityContext" . | nindent 4 }}
{{- end -}}

{{- define "inference-stack.ollama.volumes" -}}{{- end -}}
