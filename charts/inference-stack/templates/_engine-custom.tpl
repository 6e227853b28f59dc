{{/*
A server the user brings: its image (models.<key>.image), command, args, port and health path come from
the values as given (models.<key>.custom); nothing here knows what it is. Each template takes
{ctx: $, key: <model key>, model: <model values>}; see _model-pod.tpl.
*/}}

{{- define "inference-stack.custom.port" -}}
{{- required (printf "models.%s.custom.port is required" .key) (dig "custom" "port" 0 .model) | int -}}
{{- end -}}

{{- define "inference-stack.custom.container" -}}
{{- $health := required (printf "models.%s.custom.healthPath is required" .key) (dig "custom" "healthPath" "" .model) -}}
name: server
{{- with dig "custom" "command" list .model }}
command: {{ toJson . }}
{{- end }}
{{- with dig "args" list .model }}
args: {{ toJson . }}
{{- end }}
probes: {startup: {{ $health | quote }}, readiness: {{ $health | quote }}, liveness: {{ $health | quote }}}
{{- end -}}

{{/* The cache volume holds what the server downloads under root's home (Hugging Face's cache among it). */}}
{{- define "inference-stack.custom.mounts" -}}
- {name: cache, path: /root/.cache}
{{- end -}}

{{- define "inference-stack.custom.initContainers" -}}{{- end -}}

{{- define "inference-stack.custom.volumes" -}}{{- end -}}
