{{/*
ko-child-asr.plan: the run's steps in order, each with its `python -m trainer` arguments, output,
completion markers and dependencies. Mirrors trainer/pipeline/plan.py build_plan() (storage layout,
markers and flag rules are documented there); tests/k8s/test_parity.py keeps the two equal.
Usage: {{ $plan := include "ko-child-asr.plan" . | fromYaml }} -> {jobs: [...], logdir: ...}
*/}}
{{- define "ko-child-asr.plan" -}}
{{- $v := .Values -}}
{{- $run := include "ko-child-asr.run" . -}}
{{- $root := include "ko-child-asr.root" . -}}
{{- $embedded := $v.preset | default "default" -}}
{{- $preset := list -}}
{{- if $v.preset -}}{{- $preset = list "--preset" $v.preset -}}{{- end -}}
{{- $data := printf "%s/%s" $root $v.data.dir -}}
{{- $corpus := printf "%s/%s" $root $v.data.corpus -}}
{{- $base := $v.baseModel -}}
{{- if $v.embeddedDefault -}}
{{- $data = printf "%s/%s/synthetic-%s" $root $v.data.dir $embedded -}}
{{- $corpus = printf "%s/corpora/synthetic-%s" $root $embedded -}}
{{- $base = printf "%s/models/tiny-base-%s" $root $embedded -}}
{{- end -}}
{{- $runDir := printf "%s/%s" $root $run -}}
{{- $jobs := list -}}
{{- $setup := list -}}
{{- if $v.embeddedDefault -}}
{{- $s := $v.synthetic -}}
{{- $argv := list "data" "synth" "--out" $corpus "--child-speakers" (include "ko-child-asr.flagValue" $s.childSpeakers) "--adult-speakers" (include "ko-child-asr.flagValue" $s.adultSpeakers) "--utterances-per-speaker" (include "ko-child-asr.flagValue" $s.utterancesPerSpeaker) "--seed" (include "ko-child-asr.flagValue" $s.seed) "--workers" (include "ko-child-asr.flagValue" $s.workers) -}}
{{- if $s.mispronounceRate -}}
{{- $argv = concat $argv (list "--mispronounce-rate" (include "ko-child-asr.flagValue" $s.mispronounceRate)) -}}
{{- end -}}
{{- $name := printf "%s-synth" $run -}}
{{- $jobs = append $jobs (dict "name" $name "kind" "synth" "argv" $argv "output" $corpus "markers" (list (printf "%s/synth_summary.json" $corpus)) "dependsOn" (list) "phase" 0 "rank" 0) -}}
{{- $setup = append $setup $name -}}
{{- end -}}
{{- if or $v.data.prepare $v.embeddedDefault -}}
{{- $d := $v.data -}}
{{- $source := list "--root" $corpus -}}
{{- if eq $d.format "hf" -}}
{{- $source = list "--format" "hf" "--dataset" ($d.hubDataset | default $corpus) -}}
{{- range $d.hfSplits -}}{{- $source = concat $source (list "--split" .) -}}{{- end -}}
{{- if $d.hfConfig -}}{{- $source = concat $source (list "--config" $d.hfConfig) -}}{{- end -}}
{{- if and $d.hubDataset (not (hasPrefix "s3://" $root)) -}}
{{- $source = concat $source (list "--hf-cache" (printf "%s/cache/huggingface" $root)) -}}
{{- end -}}
{{- end -}}
{{- $argv := concat (list "data" "prepare") $source (list "--out" $data "--unit" $d.unit "--val-fraction" (include "ko-child-asr.flagValue" $d.valFraction) "--test-fraction" (include "ko-child-asr.flagValue" $d.testFraction)) -}}
{{- if $d.fractions -}}
{{- $argv = append $argv "--fractions" -}}
{{- range $d.fractions -}}{{- $argv = append $argv (include "ko-child-asr.flagValue" .) -}}{{- end -}}
{{- end -}}
{{- $name := printf "%s-prepare" $run -}}
{{- $jobs = append $jobs (dict "name" $name "kind" "prepare" "argv" $argv "output" $data "markers" (list (printf "%s/prepare_report.json" $data)) "dependsOn" $setup "phase" 0 "rank" 0) -}}
{{- $setup = append $setup $name -}}
{{- end -}}
{{- if $v.embeddedDefault -}}
{{- $argv := concat (list "pretrain-base" "--train-manifest" (printf "%s/train_adult.jsonl" $data) "--val-manifest" (printf "%s/val_adult.jsonl" $data) "--vocab" $data "--output" $base) $preset -}}
{{- $name := printf "%s-base" $run -}}
{{- $jobs = append $jobs (dict "name" $name "kind" "base" "argv" $argv "output" $base "markers" (list (printf "%s/COMPLETE" $base)) "dependsOn" $setup "phase" 0 "rank" 0) -}}
{{- $setup = append $setup $name -}}
{{- end -}}
{{- $overrides := list -}}
{{- range $field := keys $v.trainOverrides | sortAlpha -}}
{{- $value := index $v.trainOverrides $field -}}
{{- $flag := printf "--%s" (replace "_" "-" $field) -}}
{{- if kindIs "bool" $value -}}
{{- $overrides = append $overrides (ternary $flag (printf "--no-%s" (replace "_" "-" $field)) $value) -}}
{{- else if kindIs "slice" $value -}}
{{- $overrides = append $overrides $flag -}}
{{- range $value -}}{{- $overrides = append $overrides (include "ko-child-asr.flagValue" .) -}}{{- end -}}
{{- else -}}
{{- $overrides = concat $overrides (list $flag (include "ko-child-asr.flagValue" $value)) -}}
{{- end -}}
{{- end -}}
{{- $phases := sortAlpha (toStrings $v.phases) -}}
{{- $final := "3" -}}
{{- if $phases -}}{{- $final = last $phases -}}{{- end -}}
{{- $lastJobs := list -}}
{{- range $rank := $v.ranks -}}
{{- $previous := $setup -}}
{{- range $phase := $phases -}}
{{- $out := printf "%s/r%v/phase%s" $runDir $rank $phase -}}
{{- $argv := list "train" "--phase" $phase "--rank" (toString $rank) "--output" $out -}}
{{- if gt (int $phase) 1 -}}
{{- $argv = concat $argv (list "--init-from" (printf "%s/r%v/phase%d/checkpoint-best" $runDir $rank (sub (int $phase) 1))) -}}
{{- end -}}
{{- $argv = concat $argv (list "--model" $base "--curriculum-dir" (printf "%s/curriculum" $data) "--val-manifest" (printf "%s/val_child.jsonl" $data) "--vocab" $data) $preset $overrides -}}
{{- $name := printf "%s-r%v-p%s" $run $rank $phase -}}
{{- $markers := list (printf "%s/metrics.json" $out) (printf "%s/checkpoint-best/COMPLETE" $out) -}}
{{- $jobs = append $jobs (dict "name" $name "kind" "train" "argv" $argv "output" $out "markers" $markers "dependsOn" $previous "phase" (int $phase) "rank" (int $rank)) -}}
{{- $previous = list $name -}}
{{- if eq $phase $final -}}{{- $lastJobs = append $lastJobs $name -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $report := printf "%s/report" $runDir -}}
{{- if $v.evaluate -}}
{{- $argv := list "compare" "--model" (printf "base=%s" $base) -}}
{{- range $rank := $v.ranks -}}
{{- range $phase := without $phases $final -}}
{{- $argv = concat $argv (list "--model" (printf "r%v-p%s=%s/r%v/phase%s/checkpoint-best" $rank $phase $runDir $rank $phase)) -}}
{{- end -}}
{{- $argv = concat $argv (list "--model" (printf "r%v=%s/r%v/phase%s/checkpoint-best" $rank $runDir $rank $final)) -}}
{{- end -}}
{{- $argv = concat $argv (list "--manifest" (printf "%s/test_child.jsonl" $data)) -}}
{{- if $v.embeddedDefault -}}
{{- $argv = concat $argv (list "--manifest-extra" (printf "adult=%s/test_adult.jsonl" $data)) -}}
{{- end -}}
{{- $argv = concat $argv (list "--output" $report) -}}
{{- if $v.assess -}}
{{- $argv = append $argv "--assess" -}}
{{- if and $v.embeddedDefault $v.synthetic.mispronounceRate -}}
{{- $argv = concat $argv (list "--assess-calibration" (printf "%s/val_child.jsonl" $data)) -}}
{{- end -}}
{{- end -}}
{{- $jobs = append $jobs (dict "name" (printf "%s-eval" $run) "kind" "eval" "argv" $argv "output" $report "markers" (list (printf "%s/comparison.md" $report)) "dependsOn" (default $setup $lastJobs) "phase" 0 "rank" 0) -}}
{{- end -}}
{{- dict "jobs" $jobs "logdir" $runDir "reportDir" $report | toYaml -}}
{{- end -}}

{{/*
ko-child-asr.flagValue: a flag value as plan.py's flag_value() prints it (numbers in JSON form: 3.0 -> 3).
*/}}
{{- define "ko-child-asr.flagValue" -}}
{{- if kindIs "string" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}
