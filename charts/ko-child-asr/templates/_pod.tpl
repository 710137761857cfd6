{{/*
Pieces every pod of a run shares (k8s/_pod.j2 renders the same). Values are written with toJson,
so no value can break out of its field.
*/}}

{{/* ko-child-asr.podSecurity: restricted Pod Security; fsGroup makes the volumes writable. */}}
{{- define "ko-child-asr.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* ko-child-asr.containerSecurity: no privilege escalation, no capabilities, read-only root. */}}
{{- define "ko-child-asr.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* ko-child-asr.scratchEnv/Mounts/Volumes: the root filesystem is read-only, so /tmp, HOME and HF_HOME are emptyDirs. */}}
{{- define "ko-child-asr.scratchEnv" -}}
- {name: HOME, value: /home/trainer}
- {name: HF_HOME, value: /cache/huggingface}
- {name: TMPDIR, value: /tmp}
{{- end -}}

{{- define "ko-child-asr.scratchMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: home, mountPath: /home/trainer}
- {name: hf-cache, mountPath: /cache/huggingface}
{{- end -}}

{{- define "ko-child-asr.scratchVolumes" -}}
- {name: tmp, emptyDir: {}}
- {name: home, emptyDir: {}}
- {name: hf-cache, emptyDir: {}}
{{- end -}}

{{/*
ko-child-asr.storageEnv: where boto3 finds the S3 credentials file (mounted read-only from the
referenced Secret, never inlined, never in env), and the endpoint.
Usage: {{- include "ko-child-asr.storageEnv" . | nindent 12 }}
*/}}
{{- define "ko-child-asr.storageEnv" -}}
{{- $s3 := .Values.storage.s3 -}}
{{- if eq .Values.storage.type "s3" -}}
{{- if $s3.secretName }}
- {name: AWS_SHARED_CREDENTIALS_FILE, value: /var/run/secrets/aws/credentials}
{{- end }}
{{- if $s3.endpoint }}
- {name: AWS_ENDPOINT_URL, value: {{ $s3.endpoint | toJson }}}
- {name: S3_ENDPOINT, value: {{ $s3.endpoint | toJson }}}
{{- end }}
{{- end -}}
{{- end -}}

{{/* ko-child-asr.storageMount: Usage: include "ko-child-asr.storageMount" (dict "root" $ "readOnly" true) */}}
{{- define "ko-child-asr.storageMount" -}}
{{- if eq .root.Values.storage.type "pvc" }}
- {name: storage, mountPath: /storage, readOnly: {{ .readOnly | toJson }}}
{{- else if .root.Values.storage.s3.secretName }}
- {name: s3-credentials, mountPath: /var/run/secrets/aws, readOnly: true}
{{- end -}}
{{- end -}}

{{/* ko-child-asr.storageVolume: the claim, or the credentials Secret's key `credentials` (defaultMode 288 = 0440). */}}
{{- define "ko-child-asr.storageVolume" -}}
{{- if eq .Values.storage.type "pvc" }}
- {name: storage, persistentVolumeClaim: {claimName: {{ include "ko-child-asr.claim" . | toJson }}}}
{{- else if .Values.storage.s3.secretName }}
- name: s3-credentials
  secret:
    secretName: {{ .Values.storage.s3.secretName | toJson }}
    defaultMode: 288
    items: [{key: credentials, path: credentials}]
{{- end -}}
{{- end -}}

{{/* ko-child-asr.serviceAccount: workload identity's ServiceAccount if any; never an API token. */}}
{{- define "ko-child-asr.serviceAccount" -}}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.serviceAccountName }}
serviceAccountName: {{ .Values.storage.s3.serviceAccountName | toJson }}
{{- end }}
automountServiceAccountToken: false
{{- end -}}

{{/*
ko-child-asr.colocate: "true" when the storage is a ReadWriteOnce claim, whose pods must share a node.
*/}}
{{- define "ko-child-asr.colocate" -}}
{{- if and (eq .Values.storage.type "pvc") (eq .Values.storage.pvc.accessMode "ReadWriteOnce") -}}true{{- end -}}
{{- end -}}

{{/*
ko-child-asr.scheduling: where a pod may run; where the GPU steps may when it uses a GPU or a
ReadWriteOnce claim holds it beside the claim's other pods (k8s/_pod.j2 scheduling explains why).
Usage: include "ko-child-asr.scheduling" (dict "root" $ "usesGpu" true) | indent 6
*/}}
{{- define "ko-child-asr.scheduling" -}}
{{- $v := .root.Values -}}
{{- $gpuNodes := or .usesGpu (include "ko-child-asr.colocate" .root) -}}
{{- if $gpuNodes }}
{{- range $key := list "nodeSelector" "tolerations" }}
{{- with index $v $key }}
{{ $key }}: {{ toJson . }}
{{- end }}
{{- end }}
{{- end }}
{{- $own := dict -}}
{{- if $gpuNodes }}{{ $own = deepCopy $v.affinity }}{{ end -}}
{{- if include "ko-child-asr.colocate" .root }}
{{- $podAffinity := get $own "podAffinity" | default dict -}}
{{- $term := dict "labelSelector" (dict "matchLabels" (dict "ko-child-asr/claim" (include "ko-child-asr.claim" .root))) "topologyKey" "kubernetes.io/hostname" -}}
{{- $required := get $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" | default list -}}
{{- $_ := set $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" (append $required $term) -}}
{{- $_ := set $own "podAffinity" $podAffinity }}
affinity: {{ toJson $own }}
{{- else if $own }}
affinity: {{ toJson $own }}
{{- end }}
{{- end -}}

{{/* ko-child-asr.claimLabels: the label that podAffinity looks for, on every pod of a ReadWriteOnce claim. */}}
{{- define "ko-child-asr.claimLabels" -}}
{{- if include "ko-child-asr.colocate" . }}
ko-child-asr/claim: {{ include "ko-child-asr.claim" . | toJson }}
{{- end }}
{{- end -}}

{{/*
ko-child-asr.kueueLabels: Kueue's LocalQueue and WorkloadPriorityClass labels (k8s/_pod.j2 kueue_labels).
Usage: include "ko-child-asr.kueueLabels" (dict "queue" $q "priority" $p) | indent 4
*/}}
{{- define "ko-child-asr.kueueLabels" -}}
{{- if .queue }}
kueue.x-k8s.io/queue-name: {{ .queue | toJson }}
{{- end }}
{{- if .priority }}
kueue.x-k8s.io/priority-class: {{ .priority | toJson }}
{{- end }}
{{- end -}}

{{- define "ko-child-asr.image" -}}
{{- $digest := ternary (printf "@%s" .Values.image.digest) "" (ne .Values.image.digest "") }}
image: {{ printf "%s:%s%s" .Values.image.repository .Values.image.tag $digest | toJson }}
imagePullPolicy: {{ .Values.image.pullPolicy | toJson }}
{{- end -}}

{{- define "ko-child-asr.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - {name: {{ . | toJson }}}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
ko-child-asr.resources: requests/limits with every quantity a string (the kubernetes client 37.x
and Helm 4 server-side apply reject integers). Usage: include ... (dict "r" .Values.resources.x "gpus" 1)
*/}}
{{- define "ko-child-asr.resources" -}}
{{- $gpu := "" -}}
{{- if .gpus }}{{ $gpu = printf ", nvidia.com/gpu: \"%d\"" (int .gpus) }}{{ end -}}
resources:
  requests: {cpu: {{ .r.cpu | toJson }}, memory: {{ .r.memory | toJson }}{{ $gpu }}}
  limits: {memory: {{ .r.memory | toJson }}{{ $gpu }}}
{{- end -}}
