{{/*
Pieces of a model server's pod. Each takes a dict {ctx: $, key: <model key>, model: <model values>}.
Models have no defaults in values.yaml (the map is empty), so every optional key is read with `dig`,
which also keeps `helm lint --strict` (missing keys are errors there) quiet.
*/}}

{{/* The image dict of a model: models.<key>.image over images.<engine>, key by key. */}}
{{- define "inference-stack.modelImage" -}}
{{- $engine := dig "engine" "" .model -}}
{{- $defaults := deepCopy (get .ctx.Values.images $engine) -}}
{{- toYaml (merge (deepCopy (dig "image" dict .model)) $defaults) -}}
{{- end -}}

{{/* Container resources with the profile's GPUs added to limits (extended resources: request = limit). */}}
{{- define "inference-stack.modelResources" -}}
{{- $res := deepCopy (dig "resources" dict .model) -}}
{{- $count := int (dig "gpu" "count" 0 .model) -}}
{{- if gt $count 0 -}}
{{- $limits := get $res "limits" | default dict -}}
{{- $_ := set $limits (dig "gpu" "resource" "nvidia.com/gpu" .model) (toString $count) -}}
{{- $_ = set $res "limits" $limits -}}
{{- end -}}
{{- toYaml $res -}}
{{- end -}}

{{/* Resources without GPUs, for the Ollama pull init container (pulling needs no GPU). */}}
{{- define "inference-stack.modelResourcesNoGpu" -}}
{{- toYaml (dig "resources" dict .model) -}}
{{- end -}}

{{/* The model cache volume source: a PVC named like the Deployment, or an emptyDir. */}}
{{- define "inference-stack.modelCacheVolume" -}}
{{- if eq (dig "cache" "type" "emptyDir" .model) "persistentVolumeClaim" -}}
persistentVolumeClaim:
  claimName: {{ include "inference-stack.componentName" (dict "ctx" .ctx "component" .key) }}
{{- else -}}
emptyDir:
  {{- with dig "cache" "size" "" .model }}
  sizeLimit: {{ . }}
  {{- else }} {}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* Startup probe on `path`: the model's budget, 10s x 180 = 30 min by default (large downloads). */}}
{{- define "inference-stack.modelStartupProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
periodSeconds: {{ int (dig "startupProbe" "periodSeconds" 10 .model) }}
failureThreshold: {{ int (dig "startupProbe" "failureThreshold" 180 .model) }}
timeoutSeconds: 5
{{- end -}}

{{/* vLLM arguments after `vllm serve`: the model, its served name, then the resolved flags. */}}
{{- define "inference-stack.vllmArgs" -}}
{{- $v := dig "vllm" dict .model -}}
{{- $args := list (required (printf "models.%s.model is required" .key) (dig "model" "" .model)) -}}
{{- $args = concat $args (list "--served-model-name" .key "--host" "0.0.0.0" "--port" (include "inference-stack.enginePort" "vllm")) -}}
{{- with dig "maxModelLen" 0 $v }}{{ $args = concat $args (list "--max-model-len" (int . | toString)) }}{{ end -}}
{{- with dig "tensorParallelSize" 0 $v }}{{ $args = concat $args (list "--tensor-parallel-size" (int . | toString)) }}{{ end -}}
{{- with dig "dtype" "" $v }}{{ $args = concat $args (list "--dtype" .) }}{{ end -}}
{{- with dig "gpuMemoryUtilization" 0 $v }}{{ $args = concat $args (list "--gpu-memory-utilization" (toString .)) }}{{ end -}}
{{- with dig "toolCallParser" "" $v }}{{ $args = concat $args (list "--enable-auto-tool-choice" "--tool-call-parser" .) }}{{ end -}}
{{- $extra := list -}}
{{- range dig "args" list .model }}{{ $extra = append $extra (toString .) }}{{ end -}}
{{- toYaml (concat $args $extra) -}}
{{- end -}}

{{/* The vLLM server: containers and volumes of the pod spec. */}}
{{- define "inference-stack.vllmPod" -}}
{{- $image := fromYaml (include "inference-stack.modelImage" .) -}}
containers:
  - name: vllm
    image: {{ include "inference-stack.imageRef" $image | quote }}
    imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
    command: ["vllm", "serve"]
    args:
      {{- include "inference-stack.vllmArgs" . | nindent 6 }}
    ports:
      - name: http
        containerPort: {{ include "inference-stack.enginePort" "vllm" }}
        protocol: TCP
    env:
      # The model cache volume is mounted here, so downloads survive container restarts.
      - name: HF_HOME
        value: /root/.cache/huggingface
      {{- with dig "hfTokenSecret" dict .model }}
      - name: HF_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ required "hfTokenSecret.secretName is required" (dig "secretName" "" .) }}
            key: {{ dig "key" "token" . }}
      {{- end }}
      {{- with include "inference-stack.plainEnv" (dig "env" dict .model) }}{{ . | nindent 6 }}{{ end }}
      {{- with include "inference-stack.secretEnv" (dig "secretEnv" dict .model) }}{{ . | nindent 6 }}{{ end }}
    resources:
      {{- include "inference-stack.modelResources" . | nindent 6 }}
    volumeMounts:
      - name: shm
        mountPath: /dev/shm
      - name: cache
        mountPath: /root/.cache/huggingface
    startupProbe:
      {{- include "inference-stack.modelStartupProbe" (dict "model" .model "path" "/health") | nindent 6 }}
    readinessProbe:
      httpGet:
        path: /health
        port: http
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    livenessProbe:
      httpGet:
        path: /health
        port: http
      periodSeconds: 20
      timeoutSeconds: 10
      failureThreshold: 3
    securityContext:
      {{- include "inference-stack.rootContainerSecurityContext" . | nindent 6 }}
volumes:
  # PyTorch shares tensors between worker processes through /dev/shm; the container runtime's
  # default (64Mi) crashes vLLM, with or without tensor parallelism.
  - name: shm
    emptyDir:
      medium: Memory
      sizeLimit: {{ dig "shmSize" "2Gi" .model }}
  - name: cache
    {{- include "inference-stack.modelCacheVolume" . | nindent 4 }}
{{- end -}}

{{/*
The Ollama server. Its model is pulled by an init container, so the pod is only Ready once the
model is on disk; a postStart hook would race the readiness probe and not block on failure.
*/}}
{{- define "inference-stack.ollamaPod" -}}
{{- $image := fromYaml (include "inference-stack.modelImage" .) -}}
{{- $imageRef := include "inference-stack.imageRef" $image -}}
{{- $pullPolicy := $image.pullPolicy | default "IfNotPresent" -}}
{{- $o := dig "ollama" dict .model -}}
initContainers:
  - name: pull-model
    image: {{ $imageRef | quote }}
    imagePullPolicy: {{ $pullPolicy }}
    command: ["/bin/sh", "-c"]
    args:
      - |
        set -eu
        ollama serve &
        server=$!
        tries=0
        until ollama list >/dev/null 2>&1; do
          tries=$((tries + 1))
          if [ "$tries" -ge 120 ]; then
            echo "ollama serve did not start within 120s" >&2
            exit 1
          fi
          sleep 1
        done
        ollama pull "$OLLAMA_MODEL"
        kill "$server"
        wait "$server" || true
    env:
      {{- with include "inference-stack.plainEnv" (dig "env" dict .model) }}{{ . | nindent 6 }}{{ end }}
      {{- with include "inference-stack.secretEnv" (dig "secretEnv" dict .model) }}{{ . | nindent 6 }}{{ end }}
      # Only this pod talks to the temporary server.
      - name: OLLAMA_HOST
        value: "127.0.0.1:{{ include "inference-stack.enginePort" "ollama" }}"
      # Pulling needs no GPU; without this the image's NVIDIA_VISIBLE_DEVICES=all would expose every
      # GPU of the node to this container on runtimes that honour it.
      - name: NVIDIA_VISIBLE_DEVICES
        value: "none"
      - name: OLLAMA_MODEL
        value: {{ required (printf "models.%s.model is required" .key) (dig "model" "" .model) | quote }}
    resources:
      {{- include "inference-stack.modelResourcesNoGpu" . | nindent 6 }}
    volumeMounts:
      - name: cache
        mountPath: /root/.ollama
    securityContext:
      {{- include "inference-stack.rootContainerSecurityContext" . | nindent 6 }}
containers:
  - name: ollama
    image: {{ $imageRef | quote }}
    imagePullPolicy: {{ $pullPolicy }}
    command: ["/bin/ollama"]
    args:
      {{- toYaml (concat (list "serve") (dig "args" list .model)) | nindent 6 }}
    ports:
      - name: http
        containerPort: {{ include "inference-stack.enginePort" "ollama" }}
        protocol: TCP
    env:
      - name: OLLAMA_HOST
        value: "0.0.0.0:{{ include "inference-stack.enginePort" "ollama" }}"
      {{- with dig "contextLength" 0 $o }}
      - name: OLLAMA_CONTEXT_LENGTH
        value: {{ int . | toString | quote }}
      {{- end }}
      {{- with dig "keepAlive" "" $o }}
      - name: OLLAMA_KEEP_ALIVE
        value: {{ toString . | quote }}
      {{- end }}
      {{- with include "inference-stack.plainEnv" (dig "env" dict .model) }}{{ . | nindent 6 }}{{ end }}
      {{- with include "inference-stack.secretEnv" (dig "secretEnv" dict .model) }}{{ . | nindent 6 }}{{ end }}
    resources:
      {{- include "inference-stack.modelResources" . | nindent 6 }}
    volumeMounts:
      - name: cache
        mountPath: /root/.ollama
    startupProbe:
      {{- include "inference-stack.modelStartupProbe" (dict "model" .model "path" "/api/version") | nindent 6 }}
    readinessProbe:
      httpGet:
        path: /api/version
        port: http
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    livenessProbe:
      httpGet:
        path: /
        port: http
      periodSeconds: 20
      timeoutSeconds: 10
      failureThreshold: 3
    securityContext:
      {{- include "inference-stack.rootContainerSecurityContext" . | nindent 6 }}
volumes:
  - name: cache
    {{- include "inference-stack.modelCacheVolume" . | nindent 4 }}
{{- end -}}
