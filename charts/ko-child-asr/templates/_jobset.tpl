{{/*
ko-child-asr.step: a step's manifest: its Job, or for a multi-node step with multinode: jobset, the
JobSet whose replicated Job it is (k8s/jobset.yaml.j2 renders the same and explains it).
Usage: {{ include "ko-child-asr.step" (dict "root" $ "job" $step) | fromYaml }}
*/}}
{{- define "ko-child-asr.step" -}}
{{- $v := .root.Values -}}
{{- $job := .job -}}
{{- $step := include "ko-child-asr.job" . -}}
{{- if and (eq $job.kind "train") (gt (int $v.nodes) 1) (eq $v.multinode "jobset") -}}
{{- $step = $step | fromYaml -}}
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata:
  name: {{ $job.name | toJson }}
  namespace: {{ .root.Release.Namespace | toJson }}
  labels:
    {{- include "ko-child-asr.labels" (dict "root" .root "component" $job.kind) | nindent 4 }}
    ko-child-asr/rank: {{ $job.rank | toString | toJson }}
    ko-child-asr/phase: {{ $job.phase | toString | toJson }}
    {{- include "ko-child-asr.kueueLabels" (dict "queue" $v.queue "priority" $v.priorityClass) | indent 4 }}
spec:
  ttlSecondsAfterFinished: {{ int $v.job.ttlSecondsAfterFinished }}
  network: {enableDNSHostnames: true, publishNotReadyAddresses: true}
  successPolicy: {operator: All}
  failurePolicy:
    maxRestarts: {{ int $v.job.backoffLimit }}
    restartStrategy: Recreate
    rules:
      - {name: config-error, action: FailJobSet, onJobFailureReasons: [PodFailurePolicy]}
  replicatedJobs:
    - name: node
      replicas: 1
      template:
        metadata: {labels: {{ toJson $step.metadata.labels }}}
        spec: {{ toJson $step.spec }}
{{- else -}}
{{ $step }}
{{- end -}}
{{- end -}}
