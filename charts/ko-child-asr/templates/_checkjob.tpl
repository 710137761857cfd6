{{/*
ko-child-asr.checkJob: a step's marker check (k8s/check-job.yaml.j2 renders the same): a small CPU Job
reporting whether the step's completion markers exist, seeing the storage as the step does, on the
GPU nodes only when a ReadWriteOnce claim holds it there, queued with the CPU Jobs.
Usage: {{ include "ko-child-asr.checkJob" (dict "root" $ "job" $step "name" "<step>-check") | fromYaml }}
*/}}
{{- define "ko-child-asr.checkJob" -}}
{{- $v := .root.Values -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .name | toJson }}
  namespace: {{ .root.Release.Namespace | toJson }}
  labels:
    {{- include "ko-child-asr.labels" (dict "root" .root "component" "marker-check") | nindent 4 }}
    {{- include "ko-child-asr.kueueLabels" (dict "queue" $v.cpuQueue "priority" "") | indent 4 }}
spec:
  backoffLimit: 2
  activeDeadlineSeconds: 1800
  # Markers missing is an answer, not an error: no retry (and a failed Job is how Argo sees it).
  # onPodConditions: required by the 1.26-1.28 OpenAPI schemas (_job.tpl).
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes: {containerName: check, operator: In, values: [3]}
        onPodConditions: []
  ttlSecondsAfterFinished: {{ int $v.job.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "ko-child-asr.labels" (dict "root" .root "component" "marker-check") | nindent 8 }}
        {{- include "ko-child-asr.claimLabels" .root | indent 8 }}
    spec:
      restartPolicy: Never
      enableServiceLinks: false
      {{- include "ko-child-asr.serviceAccount" .root | nindent 6 }}
      terminationGracePeriodSeconds: 30
      {{- include "ko-child-asr.podSecurity" .root | nindent 6 }}
      {{- include "ko-child-asr.pullSecrets" .root | indent 6 }}
      {{- include "ko-child-asr.scheduling" (dict "root" .root "usesGpu" false) | indent 6 }}
      containers:
        - name: check
          {{- include "ko-child-asr.image" .root | nindent 10 }}
          command: [python, -m, trainer.pipeline.orchestrator]
          args: {{ prepend .job.markers "check-marker" | toJson }}
          env:
            {{- include "ko-child-asr.scratchEnv" .root | nindent 12 }}
            {{- include "ko-child-asr.storageEnv" .root | indent 12 }}
          {{- include "ko-child-asr.resources" (dict "r" $v.resources.orchestrator "gpus" 0) | nindent 10 }}
          {{- include "ko-child-asr.containerSecurity" .root | nindent 10 }}
          volumeMounts:
            {{- include "ko-child-asr.scratchMounts" .root | nindent 12 }}
            {{- include "ko-child-asr.storageMount" (dict "root" .root "readOnly" true) | indent 12 }}
      volumes:
        {{- include "ko-child-asr.scratchVolumes" .root | nindent 8 }}
        {{- include "ko-child-asr.storageVolume" .root | indent 8 }}
{{- end -}}
