{{/*
The chart's own objects: the run's values, the launcher Job that creates the run from them
(trainer/pipeline/launch.py renders every object of the run from k8s/, as tools/submit.py does),
its RBAC, and the `helm test` pod. Values are written with toJson, so none can break out of its field.
*/}}

{{/*
ko-child-asr.run: the run name, prefix of every object name: .Values.runName, else the release name.
*/}}
{{- define "ko-child-asr.run" -}}
{{- .Values.runName | default .Release.Name -}}
{{- end -}}

{{/*
ko-child-asr.constants: trainer/pipeline/constants.py's template values and the exit codes (the
generated constants.json; `python -m trainer.pipeline.schema --write`).
Usage: {{ $c := include "ko-child-asr.constants" . | fromJson }}
*/}}
{{- define "ko-child-asr.constants" -}}
{{- .Files.Get "constants.json" -}}
{{- end -}}

{{/*
ko-child-asr.labels: app.kubernetes.io/* labels plus the run label.
Usage: {{ include "ko-child-asr.labels" (dict "root" $ "component" "launcher") | nindent 4 }}
*/}}
{{- define "ko-child-asr.labels" -}}
{{- $run := include "ko-child-asr.run" .root -}}
app.kubernetes.io/name: ko-child-asr
app.kubernetes.io/instance: {{ $run | toJson }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | toJson }}
app.kubernetes.io/component: {{ .component | toJson }}
app.kubernetes.io/part-of: ko-child-asr
app.kubernetes.io/managed-by: {{ .root.Release.Service | toJson }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | toJson }}
ko-child-asr/run: {{ $run | toJson }}
{{- end -}}

{{/*
ko-child-asr.metadata: name, namespace and labels of an object of the chart.
Usage: {{ include "ko-child-asr.metadata" (dict "root" $ "name" "x" "component" "launcher") }}
*/}}
{{- define "ko-child-asr.metadata" -}}
metadata:
  name: {{ .name | toJson }}
  namespace: {{ .root.Release.Namespace | toJson }}
  labels:
    {{- include "ko-child-asr.labels" . | nindent 4 }}
{{- end -}}

{{/*
ko-child-asr.pod: what the chart's two pods (launcher, helm test) share: restricted Pod Security as
the image's user, its pull secrets, and scratch space (the root filesystem is read-only); a pod
appends to its volumes right after the include.
Usage: {{- include "ko-child-asr.pod" . | nindent 6 }}
*/}}
{{- define "ko-child-asr.pod" -}}
{{- $c := include "ko-child-asr.constants" . | fromJson -}}
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $c.uid }}
  runAsGroup: {{ $c.uid }}
  seccompProfile: {type: RuntimeDefault}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - {name: {{ toJson . }}}
{{- end }}
{{- end }}
volumes:
  - {name: tmp, emptyDir: {}}
  - {name: home, emptyDir: {}}
  - {name: hf-cache, emptyDir: {}}
{{- end -}}

{{/*
ko-child-asr.container: image, requests, security and scratch space of the chart's two containers;
a container appends to its env and volumeMounts right after the include.
Usage: {{- include "ko-child-asr.container" . | nindent 10 }}
*/}}
{{- define "ko-child-asr.container" -}}
{{- $image := .Values.image -}}
image: {{ printf "%s:%s%s" $image.repository $image.tag (ternary (printf "@%s" $image.digest) "" (ne $image.digest "")) | toJson }}
imagePullPolicy: {{ $image.pullPolicy | toJson }}
resources:
  requests: {cpu: {{ .Values.resources.orchestrator.cpu | toJson }}, memory: {{ .Values.resources.orchestrator.memory | toJson }}}
  limits: {memory: {{ .Values.resources.orchestrator.memory | toJson }}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities: {drop: [ALL]}
# On failure the last log lines (the one `error:` line) become the termination message.
terminationMessagePolicy: FallbackToLogsOnError
env:
  - {name: HOME, value: /home/trainer}
  - {name: HF_HOME, value: /cache/huggingface}
  - {name: TMPDIR, value: /tmp}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: home, mountPath: /home/trainer}
  - {name: hf-cache, mountPath: /cache/huggingface}
{{- end -}}
