{{/*
Names, labels and shared pod settings. Every named template is prefixed `inference-stack.` so it
cannot clash with a parent chart's templates.
*/}}

{{/* Chart name, or nameOverride; the value of app.kubernetes.io/name. */}}
{{- define "inference-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: fullnameOverride or the release name. stackgen sets fullnameOverride
to the stack's name, so the gateway config it writes (http://<fullname>-<model>/v1) matches the
Services the chart creates whatever the release is called.
*/}}
{{- define "inference-stack.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* name-version for the helm.sh/chart label. */}}
{{- define "inference-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of one component's objects: <fullname>-<component>. Not truncated: the gateway config names
model Services literally, so a silently shortened name would route nowhere. Fail instead.
Takes a dict: {ctx: $, component: "gateway"}.
*/}}
{{- define "inference-stack.componentName" -}}
{{- $name := printf "%s-%s" (include "inference-stack.fullname" .ctx) .component -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "object name %q is longer than 63 characters; shorten fullnameOverride or the key %q" $name .component) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/*
Selector labels of one component: name, instance and component only, because a Deployment's
selector is immutable and must not change with the chart version.
Takes a dict: {ctx: $, component: "gateway"}.
*/}}
{{- define "inference-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-stack.name" .ctx | quote }}
app.kubernetes.io/instance: {{ .ctx.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end -}}

{{/*
Recommended labels plus commonLabels. The chart's own labels win over commonLabels so that a
commonLabels entry can never change a selector.
Takes a dict: {ctx: $, component: "gateway"}.
*/}}
{{- define "inference-stack.labels" -}}
{{- $own := dict "app.kubernetes.io/name" (include "inference-stack.name" .ctx) -}}
{{- $_ := set $own "app.kubernetes.io/instance" .ctx.Release.Name -}}
{{- $_ = set $own "app.kubernetes.io/component" (toString .component) -}}
{{- $_ = set $own "helm.sh/chart" (include "inference-stack.chart" .ctx) -}}
{{- $_ = set $own "app.kubernetes.io/version" (.ctx.Chart.AppVersion | toString) -}}
{{- $_ = set $own "app.kubernetes.io/part-of" (include "inference-stack.name" .ctx) -}}
{{- $_ = set $own "app.kubernetes.io/managed-by" .ctx.Release.Service -}}
{{- toYaml (merge $own (deepCopy .ctx.Values.commonLabels)) -}}
{{- end -}}

{{/*
Labels of pod templates: the recommended labels without helm.sh/chart and app.kubernetes.io/version,
so that upgrading the chart alone does not restart model servers (and re-download their models).
Takes a dict: {ctx: $, component: "gateway"}.
*/}}
{{- define "inference-stack.podLabels" -}}
{{- $all := fromYaml (include "inference-stack.labels" .) -}}
{{- toYaml (omit $all "helm.sh/chart" "app.kubernetes.io/version") -}}
{{- end -}}

{{/* "repository:tag" of an image dict {repository, tag}, with "@<digest>" where imageDigests has one for it. */}}
{{- define "inference-stack.imageRef" -}}
{{- $repository := .image.repository -}}
{{- with .ctx.Values.imageRegistry -}}
{{- $parts := splitList "/" $repository -}}
{{- $host := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $host) (contains ":" $host) (eq $host "localhost")) -}}
{{- $parts = rest $parts -}}
{{- else if eq (len $parts) 1 -}}
{{- $parts = prepend $parts "library" -}}
{{- end -}}
{{- $repository = printf "%s/%s" . (join "/" $parts) -}}
{{- end -}}
{{- $ref := printf "%s:%s" $repository (toString .image.tag) -}}
{{- with index (.ctx.Values.imageDigests | default dict) $ref -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Container security context of every container: what the restricted Pod Security level asks of a
container, and a read-only root filesystem (a pod writes only to its volumes).
*/}}
{{- define "inference-stack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
Pod security context of a pod whose image defines no user of its own (vLLM, Ollama, llama.cpp, LiteLLM):
the user from `podSecurity`, never root. Takes the root context.
*/}}
{{- define "inference-stack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.podSecurity.runAsUser }}
runAsGroup: {{ int .Values.podSecurity.runAsGroup }}
fsGroup: {{ int .Values.podSecurity.fsGroup }}
{{- with .Values.podSecurity.supplementalGroups }}
supplementalGroups: {{ toJson . }}
{{- end }}
# Only when the volume's top directory is not the group's already: no walk over a cache of many GB at every start.
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Where those images write, as a user who owns nothing in them: HOME (/root, as the images define it, so that
every cache path under it stays where it was) and /tmp, each an emptyDir. `mounts` and `volumes` go with
the container's own; `env` sets HOME, which a user without a passwd entry would not get.
*/}}
{{- define "inference-stack.writableMounts" -}}
- name: home
  mountPath: /root
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "inference-stack.writableVolumes" -}}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "inference-stack.writableEnv" -}}
- name: HOME
  value: /root
# The runtime makes /root/.cache root's own when it mounts a cache volume under it: the caches that default to
# ~/.cache (vLLM's, torch's, numba's) go here instead.
- name: XDG_CACHE_HOME
  value: /root/.local/cache
{{- end -}}

{{/* Pod-level settings shared by every pod of the chart. Takes the root context. */}}
{{- define "inference-stack.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
env entries from a map NAME: {secretName, key}, sorted by NAME (Go templates range maps in key
order). Values are referenced, never copied into the manifest. Empty map: empty output.
*/}}
{{- define "inference-stack.secretEnv" -}}
{{- $out := list -}}
{{- range $name, $ref := . -}}
{{- $secretName := required (printf "secretEnv %s needs secretName" $name) (dig "secretName" "" $ref) -}}
{{- $key := required (printf "secretEnv %s needs key" $name) (dig "key" "" $ref) -}}
{{- $out = append $out (dict "name" $name "valueFrom" (dict "secretKeyRef" (dict "name" $secretName "key" $key))) -}}
{{- end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end -}}

{{/* env entries from a map NAME: value, sorted by NAME. Empty map: empty output. */}}
{{- define "inference-stack.plainEnv" -}}
{{- $out := list -}}
{{- range $name, $value := . -}}
{{- $out = append $out (dict "name" $name "value" (toString $value)) -}}
{{- end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end -}}
