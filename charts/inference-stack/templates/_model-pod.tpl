{{/*
The pod of a model server, shared by every engine, and its pieces. Each takes a dict
{ctx: $, key: <model key>, model: <model values>}. Models have no defaults in values.yaml (the map is
empty), so every optional key is read with `dig`, which also keeps `helm lint --strict` quiet.

What runs comes from the engine's own file, _engine-<engine>.tpl, which defines five templates:
  inference-stack.<engine>.port            the port the server listens on
  inference-stack.<engine>.container       YAML {name, command, args, env, probes: {startup, readiness, liveness}}
                                           (probes.startupExec and probes.readinessExec, commands,
                                           replace the startup and readiness paths)
                                           (no probes: a pod that serves no calls, a group's worker; the dict
                                           holds role, "leader" or "worker", in a LeaderWorkerSet)
  inference-stack.<engine>.mounts          YAML list of {name, path}, where the cache volume is mounted among them
  inference-stack.<engine>.initContainers  containers to run first (may be empty)
  inference-stack.<engine>.volumes         volumes besides the cache (may be empty)
and, if its image can fill a cache before the servers start (cache.preload, model-preload-job.yaml), a sixth:
  inference-stack.<engine>.preload         YAML {download: command words a repository id is appended to, env}
How it runs (image, resources, probes' timing, security and where it may write, the cache volume) is decided
here, once.
*/}}

{{/* The image dict of a model: models.<key>.image over images.<engine>, key by key. */}}
{{- define "inference-stack.modelImage" -}}
{{- $engine := dig "engine" "" .model -}}
{{- /* An engine without a default image (custom) must name its own. */ -}}
{{- $defaults := deepCopy (get .ctx.Values.images $engine | default dict) -}}
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

{{/* The model cache volume source: a PVC named like the Deployment (read-only to servers it is preloaded
for), or an emptyDir. */}}
{{- define "inference-stack.modelCacheVolume" -}}
{{- if eq (dig "cache" "type" "emptyDir" .model) "persistentVolumeClaim" -}}
persistentVolumeClaim:
  claimName: {{ include "inference-stack.componentName" (dict "ctx" .ctx "component" .key) }}
  {{- if and (dig "cache" "preload" list .model) (not .writer) }}
  readOnly: true
  {{- end }}
{{- else -}}
emptyDir:
  {{- with dig "cache" "size" "" .model }}
  sizeLimit: {{ . }}
  {{- else }} {}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
With cache.preload (a PVC's Hub repositories), a Job fills the cache before any server starts. Its name and
the file it leaves in the cache when done both end in a hash of what it downloads: another list is another
Job, which the servers wait for, and the same list on `helm upgrade` is the same finished Job.
*/}}
{{- define "inference-stack.preloadJob" -}}
{{- $hash := sha256sum (toJson (dig "cache" "preload" list .model)) | trunc 6 -}}
{{- include "inference-stack.componentName" (dict "ctx" .ctx "component" (printf "%s-preload-%s" .key $hash)) -}}
{{- end -}}

{{/* Where a model's pods may run: its nodeSelector, tolerations and affinity. Takes the model's values. */}}
{{- define "inference-stack.modelPlacement" -}}
{{- with dig "nodeSelector" dict . }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with dig "tolerations" list . }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with dig "affinity" dict . }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Where the engine mounts the cache volume. */}}
{{- define "inference-stack.cachePath" -}}
{{- range fromYamlArray (include (printf "inference-stack.%s.mounts" (dig "engine" "" .model)) .) }}
{{- if eq .name "cache" }}{{ .path }}{{ end }}
{{- end -}}
{{- end -}}

{{/* The file the preload Job leaves in the cache once every download is done, under the volume's root. */}}
{{- define "inference-stack.preloadMarker" -}}
{{- printf ".stackgen/%s.done" (include "inference-stack.preloadJob" .) -}}
{{- end -}}

{{/* An init container that holds the server until the preload Job is done, saying what it waits for. */}}
{{- define "inference-stack.waitForPreload" -}}
{{- $image := fromYaml (include "inference-stack.modelImage" .) -}}
- name: wait-for-preload
  image: {{ include "inference-stack.imageRef" (dict "ctx" .ctx "image" $image) | quote }}
  imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
  command: ["/bin/sh", "-c"]
  args:
    - |
      until [ -f "$MARKER" ]; do
        echo "waiting for Job $JOB to fill the model cache (kubectl logs job/$JOB)"
        sleep 5
      done
  env:
    - name: MARKER
      value: {{ printf "/preloaded/%s" (include "inference-stack.preloadMarker" .) | quote }}
    - name: JOB
      value: {{ include "inference-stack.preloadJob" . | quote }}
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 64Mi}
  volumeMounts:
    # Not under /root, which the image keeps to root.
    - name: cache
      mountPath: /preloaded
      readOnly: true
  securityContext:
    {{- include "inference-stack.containerSecurityContext" . | nindent 4 }}
{{- end -}}

{{/*
Startup probe on `path`, or running `exec` when the engine gives a command (one that may take as long
as loading a model): the model's budget, 10s x 180 = 30 min by default (large downloads).
*/}}
{{- define "inference-stack.modelStartupProbe" -}}
{{- if .exec }}
exec:
  command: {{ toJson .exec }}
{{- else }}
httpGet:
  path: {{ .path }}
  port: http
{{- end }}
periodSeconds: {{ int (dig "startupProbe" "periodSeconds" 10 .model) }}
failureThreshold: {{ int (dig "startupProbe" "failureThreshold" 180 .model) }}
timeoutSeconds: {{ if .exec }}300{{ else }}5{{ end }}
{{- end -}}

{{/* HF_TOKEN from hfTokenSecret, for the engines that download from the Hugging Face Hub. Empty without one. */}}
{{- define "inference-stack.hfTokenEnv" -}}
{{- with dig "hfTokenSecret" dict . }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "hfTokenSecret.secretName is required" (dig "secretName" "" .) }}
      key: {{ dig "key" "token" . }}
{{- end }}
{{- end -}}

{{/* The containers and volumes of a model server's pod. */}}
{{- define "inference-stack.modelPodSpec" -}}
{{- $engine := dig "engine" "" .model -}}
{{- $c := fromYaml (include (printf "inference-stack.%s.container" $engine) .) -}}
{{- $image := fromYaml (include "inference-stack.modelImage" .) -}}
{{- $port := include (printf "inference-stack.%s.port" $engine) . -}}
{{- $preload := dig "cache" "preload" list .model -}}
{{- $init := include (printf "inference-stack.%s.initContainers" $engine) . -}}
{{- if or $preload $init }}
initContainers:
  {{- if $preload }}
  {{- include "inference-stack.waitForPreload" . | nindent 2 }}
  {{- end }}
  {{- with $init }}{{ . | nindent 2 }}{{ end }}
{{- end }}
containers:
  - name: {{ $c.name }}
    image: {{ include "inference-stack.imageRef" (dict "ctx" .ctx "image" $image) | quote }}
    imagePullPolicy: {{ $image.pullPolicy | default "IfNotPresent" }}
    {{- with $c.command }}
    command: {{ toJson . }}
    {{- end }}
    {{- with $c.args }}
    args:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- /* A group's worker serves nothing on it: no port named http, so no Service, router or PodMonitor finds it. */}}
    {{- if ne (default "" .role) "worker" }}
    ports:
      - name: http
        containerPort: {{ $port }}
        protocol: TCP
    {{- end }}
    {{- $env := concat (fromYamlArray (include "inference-stack.writableEnv" .)) ($c.env | default list)
          (fromYamlArray (include "inference-stack.hfTokenEnv" .model))
          (fromYamlArray (include "inference-stack.plainEnv" (dig "env" dict .model)))
          (fromYamlArray (include "inference-stack.secretEnv" (dig "secretEnv" dict .model))) }}
    {{- with $env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    resources:
      {{- include "inference-stack.modelResources" . | nindent 6 }}
    volumeMounts:
      {{- range fromYamlArray (include (printf "inference-stack.%s.mounts" $engine) .) }}
      - name: {{ .name }}
        mountPath: {{ .path }}
        {{- if and $preload (eq .name "cache") }}
        readOnly: true
        {{- end }}
      {{- end }}
      {{- include "inference-stack.writableMounts" . | nindent 6 }}
    {{- $worker := eq (default "" .role) "worker" }}
    {{- with dig "shutdown" (ternary "workerPreStopSeconds" "preStopSeconds" $worker) 0 .model }}
    lifecycle:
      # Keep serving while the pod is dropped from Endpoints and the routers' lists; SIGTERM comes after. (A group's
      # worker waits for its leader's drain too: the leader's calls in flight need every stage of the model.)
      preStop:
        sleep:
          seconds: {{ int . }}
    {{- end }}
    {{- if $c.probes }}
    startupProbe:
      {{- include "inference-stack.modelStartupProbe" (dict "model" .model "path" $c.probes.startup "exec" $c.probes.startupExec) | nindent 6 }}
    readinessProbe:
      {{- if $c.probes.readinessExec }}
      exec:
        command: {{ toJson $c.probes.readinessExec }}
      {{- else }}
      httpGet:
        path: {{ $c.probes.readiness }}
        port: http
      {{- end }}
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    livenessProbe:
      httpGet:
        path: {{ $c.probes.liveness }}
        port: http
      periodSeconds: 20
      timeoutSeconds: 10
      failureThreshold: 3
    {{- end }}
    securityContext:
      {{- include "inference-stack.containerSecurityContext" . | nindent 6 }}
volumes:
  {{- with include (printf "inference-stack.%s.volumes" $engine) . }}{{ . | nindent 2 }}{{ end }}
  {{- include "inference-stack.writableVolumes" . | nindent 2 }}
  - name: cache
    {{- include "inference-stack.modelCacheVolume" . | nindent 4 }}
{{- end -}}

{{/*
A model server's pod template (metadata and spec), for its Deployment or for the leader and the workers of its
LeaderWorkerSet. Takes {ctx, key, model, role}: role is empty for a Deployment's pod, "leader" or "worker" in a
group; the engine's container template reads it.
*/}}
{{- define "inference-stack.modelPodTemplate" -}}
{{- $root := .ctx -}}
{{- $ctx := dict "ctx" $root "component" .key -}}
metadata:
  labels:
    {{- include "inference-stack.podLabels" $ctx | nindent 4 }}
  {{- with dig "podAnnotations" dict .model }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- include "inference-stack.podCommon" $root | nindent 2 }}
  # Time to leave the routers' and Services' lists, then to drain the calls in flight (values: shutdown).
  terminationGracePeriodSeconds: {{ int (dig "shutdown" "gracePeriodSeconds" 60 .model) }}
  securityContext:
    {{- include "inference-stack.podSecurityContext" $root | nindent 4 }}
  {{- with dig "runtimeClassName" "" .model }}
  runtimeClassName: {{ . }}
  {{- end }}
  {{- with dig "priorityClassName" "" .model }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with include "inference-stack.modelPlacement" .model }}{{ . | nindent 2 }}{{ end }}
  {{- include "inference-stack.modelPodSpec" . | trim | nindent 2 }}
{{- end -}}

{{/* The labels of the pods that serve a model's calls: its pods, or only its groups' leaders. Takes {ctx, key,
model}. */}}
{{- define "inference-stack.servingSelector" -}}
{{- include "inference-stack.selectorLabels" (dict "ctx" .ctx "component" .key) }}
{{- if dig "group" dict .model }}
leaderworkerset.sigs.k8s.io/worker-index: "0"
{{- end }}
{{- end -}}
