{{/*
Naming, labels and value checks. The Jinja2 templates in k8s/ render the same objects;
tests/k8s/test_parity.py compares them.
*/}}

{{/*
ko-child-asr.run: the run name, prefix of every object name: .Values.runName, else the release name.
Usage: {{ include "ko-child-asr.run" . }}
*/}}
{{- define "ko-child-asr.run" -}}
{{- .Values.runName | default .Release.Name -}}
{{- end -}}

{{/*
ko-child-asr.labels: app.kubernetes.io/* labels plus the run label.
Usage: {{ include "ko-child-asr.labels" (dict "root" $ "component" "train") | nindent 4 }}
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
ko-child-asr.metadata: name, namespace and labels of an object of the run.
Usage: {{ include "ko-child-asr.metadata" (dict "root" $ "name" "x" "component" "plan") }}
*/}}
{{- define "ko-child-asr.metadata" -}}
metadata:
  name: {{ .name | toJson }}
  namespace: {{ .root.Release.Namespace | toJson }}
  labels:
    {{- include "ko-child-asr.labels" . | nindent 4 }}
{{- end -}}

{{/*
ko-child-asr.root: where the storage is, as pods see it: the PVC mount or the s3:// prefix.
*/}}
{{- define "ko-child-asr.root" -}}
{{- if eq .Values.storage.type "s3" -}}{{ .Values.storage.s3.prefix }}{{- else -}}/storage{{- end -}}
{{- end -}}

{{/*
ko-child-asr.claim: the PVC every pod mounts: an existing claim, or the one the chart creates.
*/}}
{{- define "ko-child-asr.claim" -}}
{{- .Values.storage.pvc.claimName | default (printf "%s-storage" (include "ko-child-asr.run" .)) -}}
{{- end -}}

{{/*
ko-child-asr.validateValues: the cross-field checks of trainer/pipeline/config.py problems();
collects every problem and fails once. Usage: {{ include "ko-child-asr.validateValues" . }}
*/}}
{{- define "ko-child-asr.validateValues" -}}
{{- $v := .Values -}}
{{- $run := include "ko-child-asr.run" . -}}
{{- $problems := list -}}
{{- if gt (len $run) 40 -}}
{{- $problems = append $problems (printf "runName: '%s' is longer than 40 characters (every object name must stay within 63)" $run) -}}
{{- end -}}
{{- if has $run (list "data" "models") -}}
{{- $problems = append $problems (printf "runName: '%s' is reserved for the storage layout" $run) -}}
{{- end -}}
{{- if and (gt (int $v.nodes) 1) (eq $v.storage.type "pvc") (ne $v.storage.pvc.accessMode "ReadWriteMany") -}}
{{- $problems = append $problems "storage.pvc.accessMode: nodes > 1 needs ReadWriteMany (every node writes the same claim)" -}}
{{- end -}}
{{- if eq $v.storage.type "s3" -}}
{{- if not $v.storage.s3.prefix -}}
{{- $problems = append $problems "storage.s3.prefix: required when storage.type is s3" -}}
{{- end -}}
{{- if not (or $v.storage.s3.secretName $v.storage.s3.serviceAccountName) -}}
{{- $problems = append $problems "storage.s3: set secretName (credentials Secret) or serviceAccountName (workload identity)" -}}
{{- end -}}
{{- end -}}
{{- if and $v.embeddedDefault $v.data.corpus -}}
{{- $problems = append $problems "data.corpus: the embedded default synthesises its corpus; leave corpus empty" -}}
{{- end -}}
{{- if and $v.data.prepare (not (or $v.data.corpus $v.data.hubDataset)) (not $v.embeddedDefault) -}}
{{- $problems = append $problems "data.prepare: needs data.corpus (or data.hubDataset, or embeddedDefault)" -}}
{{- end -}}
{{- if and (ne $v.data.format "hf") (or $v.data.hubDataset $v.data.hfSplits $v.data.hfConfig) -}}
{{- $problems = append $problems "data.format: hubDataset, hfSplits and hfConfig need format hf" -}}
{{- end -}}
{{- if and (eq $v.data.format "hf") $v.embeddedDefault -}}
{{- $problems = append $problems "data.format: the embedded default's synthetic corpus is aihub" -}}
{{- end -}}
{{- if and $v.data.corpus $v.data.hubDataset -}}
{{- $problems = append $problems "data.hubDataset: set data.corpus or data.hubDataset, not both" -}}
{{- end -}}
{{- if and (not $v.phases) (not $v.evaluate) -}}
{{- $problems = append $problems "phases: empty and evaluate is false: nothing to run" -}}
{{- end -}}
{{- if and $v.assess (not $v.evaluate) -}}
{{- $problems = append $problems "assess: runs in the comparison Job; needs evaluate" -}}
{{- end -}}
{{- if and $v.assess (or $v.data.prepare $v.embeddedDefault) (ne $v.data.unit "phone") -}}
{{- $problems = append $problems "assess: only phone-unit models can be assessed; set data.unit: phone" -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "invalid values:\n  %s" (join "\n  " $problems)) -}}
{{- end -}}
{{- end -}}
