{{/*
ko-child-asr.job: one step of the plan as a Job (k8s/job.yaml.j2 renders the same). The orchestrator
creates it from the plan ConfigMap when the step before it is Complete and its marker exists.
Usage: {{ include "ko-child-asr.job" (dict "root" $ "job" $step) | fromYaml }}
*/}}
{{- define "ko-child-asr.job" -}}
{{- $v := .root.Values -}}
{{- $job := .job -}}
{{- $run := include "ko-child-asr.run" .root -}}
{{- $usesGpu := not (has $job.kind (list "synth" "prepare")) -}}
{{- $distributed := eq $job.kind "train" -}}
{{- /* one GPU per torchrun process for training; base and evaluation are one process */ -}}
{{- $gpus := ternary (ternary (int $v.gpusPerNode) (min (int $v.gpusPerNode) 1) $distributed) 0 $usesGpu -}}
{{- $indexed := and $distributed (gt (int $v.nodes) 1) -}}
{{- $gang := and $indexed (eq $v.multinode "jobset") -}}
{{- $r := ternary $v.resources.trainer $v.resources.prepare $usesGpu -}}
{{- $queue := ternary (ternary "" $v.queue $gang) $v.cpuQueue $usesGpu -}}
{{- $priority := ternary $v.priorityClass "" $usesGpu -}}
{{- $launcher := list -}}
{{- if and $distributed (or (gt (int $v.nodes) 1) (gt (int $v.gpusPerNode) 1)) -}}
{{- $procs := printf "--nproc-per-node=%d" (max (int $v.gpusPerNode) 1) -}}
{{- $shutdown := printf "--shutdown-timeout=%d" (sub (int $v.job.terminationGracePeriodSeconds) 30) -}}
{{- if $indexed -}}
{{- $launcher = list "python" "-m" "trainer.torchrun" (printf "--nnodes=%d" (int $v.nodes)) $procs "--node-rank=$(NODE_RANK)" (ternary (printf "--master-addr=%s-node-0-0.%s" $job.name $job.name) (printf "--master-addr=%s-0.%s-ddp" $job.name $run) $gang) "--master-port=29500" $shutdown "-m" "trainer" -}}
{{- else -}}
{{- $launcher = list "python" "-m" "trainer.torchrun" "--standalone" $procs $shutdown "-m" "trainer" -}}
{{- end -}}
{{- end -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $job.name | toJson }}
  namespace: {{ .root.Release.Namespace | toJson }}
  labels:
    {{- include "ko-child-asr.labels" (dict "root" .root "component" $job.kind) | nindent 4 }}
    {{- if eq $job.kind "train" }}
    ko-child-asr/rank: {{ $job.rank | toString | toJson }}
    ko-child-asr/phase: {{ $job.phase | toString | toJson }}
    {{- end }}
    {{- include "ko-child-asr.kueueLabels" (dict "queue" $queue "priority" (ternary "" $priority $gang)) | indent 4 }}
spec:
  backoffLimit: {{ ternary 0 (int $v.job.backoffLimit) $gang }}
  activeDeadlineSeconds: {{ int $v.job.activeDeadlineSeconds }}
  {{- if not $gang }}
  ttlSecondsAfterFinished: {{ int $v.job.ttlSecondsAfterFinished }}
  {{- end }}
  {{- if $indexed }}
  completionMode: Indexed
  completions: {{ int $v.nodes }}
  parallelism: {{ int $v.nodes }}
  {{- end }}
  # Preemption is not the trainer's fault: the pod is retried (resuming from its last checkpoint)
  # without using up backoffLimit, whether the cluster marked it (DisruptionTarget) or the trainer
  # saved a checkpoint after SIGTERM and exited 75; activeDeadlineSeconds still bounds the Job.
  # A config error (exit 78) cannot be fixed by retrying: fail at once. The 1.26-1.28 OpenAPI schemas
  # require onPodConditions in every rule (empty beside onExitCodes; the server accepts both forms).
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes: {containerName: trainer, operator: In, values: [78]}
        onPodConditions: []
      - action: Ignore
        onExitCodes: {containerName: trainer, operator: In, values: [75]}
        onPodConditions: []
      - action: Ignore
        onPodConditions: [{type: DisruptionTarget, status: "True"}]
  template:
    metadata:
      labels:
        {{- include "ko-child-asr.labels" (dict "root" .root "component" $job.kind) | nindent 8 }}
        {{- include "ko-child-asr.claimLabels" .root | indent 8 }}
    spec:
      restartPolicy: Never
      enableServiceLinks: false
      {{- with $priority }}
      priorityClassName: {{ toJson . }}
      {{- end }}
      {{- include "ko-child-asr.serviceAccount" .root | nindent 6 }}
      # Long enough for the trainer to finish the step and write a checkpoint after SIGTERM.
      terminationGracePeriodSeconds: {{ int $v.job.terminationGracePeriodSeconds }}
      {{- include "ko-child-asr.podSecurity" .root | nindent 6 }}
      {{- include "ko-child-asr.pullSecrets" .root | indent 6 }}
      {{- if and $indexed (not $gang) }}
      subdomain: {{ printf "%s-ddp" $run | toJson }}
      {{- end }}
      {{- include "ko-child-asr.scheduling" (dict "root" .root "usesGpu" $usesGpu) | indent 6 }}
      containers:
        - name: trainer
          {{- include "ko-child-asr.image" .root | nindent 10 }}
          {{- with $launcher }}
          command: {{ toJson . }}
          {{- end }}
          args: {{ toJson $job.argv }}
          env:
            {{- include "ko-child-asr.scratchEnv" .root | nindent 12 }}
            {{- include "ko-child-asr.storageEnv" .root | indent 12 }}
            {{- if $indexed }}
            - name: NODE_RANK
              valueFrom: {fieldRef: {fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
            {{- end }}
          {{- include "ko-child-asr.resources" (dict "r" $r "gpus" $gpus) | nindent 10 }}
          {{- include "ko-child-asr.containerSecurity" .root | nindent 10 }}
          volumeMounts:
            {{- include "ko-child-asr.scratchMounts" .root | nindent 12 }}
            # PyTorch data loader workers share tensors through /dev/shm; the default 64 MiB is too small.
            - {name: dshm, mountPath: /dev/shm}
            {{- include "ko-child-asr.storageMount" (dict "root" .root "readOnly" false) | indent 12 }}
      volumes:
        {{- include "ko-child-asr.scratchVolumes" .root | nindent 8 }}
        - {name: dshm, emptyDir: {medium: Memory, sizeLimit: {{ $v.resources.shmSize | toJson }}}}
        {{- include "ko-child-asr.storageVolume" .root | indent 8 }}
{{- end -}}
