{{/*
Naming, labels and shared snippets. Every object name is derived from mangaassist.fullname.
*/}}

{{- define "mangaassist.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mangaassist.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mangaassist.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mangaassist.triton.fullname" -}}
{{- printf "%s-triton" (include "mangaassist.fullname" .) -}}
{{- end -}}

{{- define "mangaassist.ensemble.fullname" -}}
{{- printf "%s-ensemble" (include "mangaassist.fullname" .) -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "triton"). */}}
{{- define "mangaassist.labels" -}}
helm.sh/chart: {{ include "mangaassist.chart" .ctx }}
{{ include "mangaassist.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mangaassist
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "triton"). */}}
{{- define "mangaassist.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mangaassist.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mangaassist.triton.serviceAccountName" -}}
{{- if .Values.triton.serviceAccount.create -}}
{{- default (include "mangaassist.triton.fullname" .) .Values.triton.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.triton.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mangaassist.ensemble.serviceAccountName" -}}
{{- if .Values.ensemble.serviceAccount.create -}}
{{- default (include "mangaassist.ensemble.fullname" .) .Values.ensemble.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.ensemble.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference; call with an image dict and a default tag. */}}
{{- define "mangaassist.image" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString (default .defaultTag $img.tag)) -}}
{{- end -}}
{{- end -}}

{{/* Triton gRPC address the ensemble dials (headless Service for client-side balancing). */}}
{{- define "mangaassist.triton.grpcAddress" -}}
{{- if .Values.ensemble.tritonUrl -}}
{{- .Values.ensemble.tritonUrl -}}
{{- else -}}
{{- $svc := include "mangaassist.triton.fullname" . -}}
{{- if .Values.ensemble.tritonClientSideLB -}}
{{- $svc = printf "%s-headless" $svc -}}
{{- end -}}
{{- printf "%s.%s.svc.%s:%v" $svc .Release.Namespace .Values.clusterDomain .Values.triton.ports.grpc -}}
{{- end -}}
{{- end -}}

{{/* Secret holding Triton's restricted-protocol admin value. */}}
{{- define "mangaassist.triton.adminSecretName" -}}
{{- default (printf "%s-admin" (include "mangaassist.triton.fullname" .)) .Values.triton.restrictedProtocols.existingSecret -}}
{{- end -}}

{{/* Bedrock region: ensemble.bedrock.region, else aws.region. */}}
{{- define "mangaassist.bedrock.region" -}}
{{- default .Values.aws.region .Values.ensemble.bedrock.region -}}
{{- end -}}

{{/* Secret holding the ensemble's bearer tokens. */}}
{{- define "mangaassist.ensemble.authSecretName" -}}
{{- default (printf "%s-auth" (include "mangaassist.ensemble.fullname" .)) .Values.ensemble.auth.existingSecret -}}
{{- end -}}

{{/* The in-chart PostgreSQL's password Secret (or the operator's, state.postgres.existingSecret). */}}
{{- define "mangaassist.state.postgresSecretName" -}}
{{- default (printf "%s-postgres" (include "mangaassist.fullname" .)) .Values.state.postgres.existingSecret -}}
{{- end -}}

{{/* state.redis_url / state.postgres_dsn: the in-chart instances' Services, else the operator's. */}}
{{- define "mangaassist.state.redisUrl" -}}
{{- $r := .Values.state.redis -}}
{{- if $r.deploy -}}
{{- printf "redis://%s-redis:%v/0" (include "mangaassist.fullname" .) $r.port -}}
{{- else -}}
{{- $r.url -}}
{{- end -}}
{{- end -}}

{{- define "mangaassist.state.postgresDsn" -}}
{{- $p := .Values.state.postgres -}}
{{- if $p.deploy -}}
{{- printf "host=%s-postgres port=%v dbname=%s user=%s" (include "mangaassist.fullname" .) $p.port $p.database $p.user -}}
{{- else -}}
{{- $p.dsn -}}
{{- end -}}
{{- end -}}

{{/* The settings the chart owns, in the flat section.field shape of server/settings.py. */}}
{{- define "mangaassist.ensemble.ownedConfig" -}}
{{- $e := .Values.ensemble -}}
{{- $index := trimSuffix "/" $e.indexDir -}}
triton:
  url: {{ include "mangaassist.triton.grpcAddress" . | quote }}
retrieval:
  index_dir: {{ $index | quote }}
  catalog_db: {{ printf "%s/catalog.sqlite" $index | quote }}
  milvus_uri: {{ printf "%s/milvus.db" $index | quote }}
guardrails:
  # the jailbreak scorer the image ships (deploy/docker/ensemble.Dockerfile copies .build/guardrails)
  injection_model: "/opt/mangaassist/guardrails/injection_model.json"
  {{- if .Values.triton.enabled }}
  # Triton's hallucination_scorer (lexical fallback while it is missing); "auto" would look for a
  # local model repository, which the pod does not have.
  hallucination_scoring: triton
  {{- end }}
llm:
  enabled: {{ $e.bedrock.enabled }}
  bedrock_region: {{ include "mangaassist.bedrock.region" . | quote }}
  small_model_id: {{ $e.bedrock.smallModelId | quote }}
  large_model_id: {{ $e.bedrock.largeModelId | quote }}
  {{- if .Values.triton.enabled }}
  # The local SmolLM2 tier is served by this release's Triton (llm_small); the pod has no model
  # repository for "auto" to look at.
  local_tier: "on"
  {{- end }}
state:
  # Where the state every replica shares lives (values state.*): "redis" = Redis + PostgreSQL (the traffic log;
  # its password is PGPASSWORD from a Secret), "memory" = each process (one replica only: rendering refuses more).
  backend: {{ .Values.state.backend | quote }}
  {{- if eq .Values.state.backend "redis" }}
  redis_url: {{ include "mangaassist.state.redisUrl" . | quote }}
  postgres_dsn: {{ include "mangaassist.state.postgresDsn" . | quote }}
  {{- end }}
traffic:
  # The traffic log's embedded store under state.backend "memory": the root filesystem is read-only, /tmp is the
  # pod's emptyDir (512Mi), and the row bound keeps the file inside it (~1 KB a row).
  sqlite_path: /tmp/traffic/traffic.db
  max_rows: 200000
{{- with .Values.rollout }}{{ if .enabled }}
rollout:
  # The rollout ConfigMap (rollout-configmap.yaml), re-read every poll_s without a restart.
  file: {{ printf "%s/rollout.yaml" (trimSuffix "/" .mountPath) | quote }}
  poll_s: {{ .pollSeconds }}
  default_version: {{ .defaultVersion | toString | quote }}
  # The registry's gate records decide which versions may answer ("" = none: only default_version).
  lifecycle_dir: {{ if .registry.existingClaim }}{{ .registry.mountPath | quote }}{{ else }}""{{ end }}
{{- end }}{{ end }}
{{- end -}}

{{/* The ensemble service configuration document: the chart-owned settings, with
ensemble.config (toYaml then tpl) merged over them. */}}
{{- define "mangaassist.ensemble.config" -}}
{{- $owned := include "mangaassist.ensemble.ownedConfig" . | fromYaml -}}
{{- $user := tpl (toYaml .Values.ensemble.config) . | fromYaml -}}
{{- toYaml (mustMergeOverwrite $owned $user) -}}
{{- end -}}

{{/* The rollout file (server/rollout/config.py) from .Values.rollout.config. */}}
{{- define "mangaassist.rollout.file" -}}
{{- $c := .Values.rollout.config -}}
model: intent_classifier_onnx
stable: {{ $c.stable | toString | quote }}
{{- if $c.shadow }}
shadow: {{ $c.shadow | toString | quote }}
{{- end }}
{{- if $c.canary }}
canary:
  version: {{ $c.canary.version | toString | quote }}
  percent: {{ $c.canary.percent }}
{{- end }}
{{- end -}}

{{/* The model-sync sidecar's loop (triton.modelRepository.s3.syncIntervalSeconds > 0): aws s3 sync into the
repository, then a repository-API load of each model a download touched (or whose last load failed), ensembles after
the models they call.
Env: MODEL_REPOSITORY_URI, MODELS, SYNC_INTERVAL_SECONDS, TRITON_HTTP, ADMIN_KEY, TRITON_ADMIN_VALUE.
tests/deploy/test_chart_processes.py runs it against a real tritonserver with a stand-in aws. */}}
{{- define "mangaassist.triton.modelSyncScript" -}}
set -u
command -v curl >/dev/null 2>&1 || { echo "model-sync: curl is missing from the image" >&2; exit 1; }
cd "$MODELS"
pending=""
while :; do
  sleep "$SYNC_INTERVAL_SECONDS"
  out=$(aws s3 sync --no-progress "$MODEL_REPOSITORY_URI" .{{ range .Values.triton.modelRepository.s3.extraSyncArgs }} {{ . | squote }}{{ end }}) || { echo "model-sync: sync failed; retrying" >&2; continue; }
  changed=$({ printf '%s\n' "$out" | sed -n 's#^download: .* to \(\./\)\{0,1\}\([^/]*\)/.*#\2#p'; printf '%s\n' $pending; } | grep -v '^$' | sort -u)
  [ -n "$changed" ] || continue
  pending=""
  for pass in model ensemble; do
    for m in $changed; do
      kind=model
      if grep -q 'platform: *"ensemble"' "$m/config.pbtxt" 2>/dev/null; then kind=ensemble; fi
      [ "$kind" = "$pass" ] || continue
      if curl -fsS -X POST -H "$ADMIN_KEY: $TRITON_ADMIN_VALUE" -o /dev/null "$TRITON_HTTP/v2/repository/models/$m/load"; then
        echo "model-sync: loaded $m"
      else
        echo "model-sync: Triton did not load $m (the loaded one keeps serving); trying again after the next sync" >&2
        pending="$pending $m"
      fi
    done
  done
done
{{- end -}}

{{/* Pod and container security contexts (restricted profile). */}}
{{- define "mangaassist.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "mangaassist.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}

{{/* Topology spread constraints with the component's selector filled in when omitted;
call with (dict "ctx" $ "component" "triton" "constraints" list). */}}
{{- define "mangaassist.topologySpread" -}}
{{- $out := list -}}
{{- range .constraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "mangaassist.selectorLabels" (dict "ctx" $.ctx "component" $.component) | fromYaml)) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Render-time checks that a schema cannot express. */}}
{{- define "mangaassist.validate" -}}
{{- $e := .Values.ensemble -}}
{{- if le (int $e.terminationGracePeriodSeconds) (add (int $e.drainGraceSeconds) (int $e.preStopSeconds) | int) -}}
{{- fail (printf "ensemble.terminationGracePeriodSeconds (%v) must be larger than ensemble.drainGraceSeconds (%v) + ensemble.preStopSeconds (%v)" $e.terminationGracePeriodSeconds $e.drainGraceSeconds $e.preStopSeconds) -}}
{{- end -}}
{{- $t := .Values.triton -}}
{{- if and $t.enabled (le (int $t.terminationGracePeriodSeconds) (add (int $t.exitTimeoutSecs) (int $t.preStopSeconds) | int)) -}}
{{- fail (printf "triton.terminationGracePeriodSeconds (%v) must be larger than triton.exitTimeoutSecs (%v) + triton.preStopSeconds (%v)" $t.terminationGracePeriodSeconds $t.exitTimeoutSecs $t.preStopSeconds) -}}
{{- end -}}
{{- if and $t.enabled (eq $t.modelRepository.source "pvc") (not $t.modelRepository.pvc.claimName) -}}
{{- fail "triton.modelRepository.pvc.claimName is required when triton.modelRepository.source is \"pvc\"" -}}
{{- end -}}
{{- if and $t.enabled (eq $t.modelRepository.source "s3") (not (hasPrefix "s3://" $t.modelRepository.s3.uri)) -}}
{{- fail "triton.modelRepository.s3.uri must be an s3:// URI when triton.modelRepository.source is \"s3\"" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.secretName is required when tls.enabled is true" -}}
{{- end -}}
{{- if and $e.bedrock.enabled (not (include "mangaassist.bedrock.region" .)) -}}
{{- fail "ensemble.bedrock.region (or aws.region) is required when ensemble.bedrock.enabled is true" -}}
{{- end -}}
{{- /* ensemble.config keys are checked by values.schema.json (generated from server/settings.py by
deploy/helm/settings_schema.py): unknown settings and server.auth_tokens (a Secret's job) are refused. */ -}}
{{- if and .Values.tls.enabled (eq (int .Values.tls.healthPort) (int $e.ports.grpc)) -}}
{{- fail "tls.healthPort must differ from ensemble.ports.grpc (kubelet gRPC probes cannot use TLS)" -}}
{{- end -}}
{{- $st := .Values.state -}}
{{- if and (eq $st.backend "memory") (or $e.autoscaling.enabled (gt (int $e.replicas) 1)) -}}
{{- fail (printf "state.backend is \"memory\" (every replica would keep its own sessions, rate limits, feedback and rollout decision) but %s: set state.backend: redis (the in-chart Redis + PostgreSQL, or state.redis.url / state.postgres.dsn of yours), or run one replica without the HPA" (ternary "ensemble.autoscaling.enabled is true" (printf "ensemble.replicas is %v" $e.replicas) $e.autoscaling.enabled)) -}}
{{- end -}}
{{- if and (eq $st.backend "redis") (not $st.redis.deploy) (not $st.redis.url) (not $st.redis.existingSecret) -}}
{{- fail "state.redis.url (or state.redis.existingSecret) is required when state.redis.deploy is false" -}}
{{- end -}}
{{- if and (eq $st.backend "redis") (not $st.postgres.deploy) (not $st.postgres.dsn) -}}
{{- fail "state.postgres.dsn is required when state.postgres.deploy is false" -}}
{{- end -}}
{{- if and $e.autoscaling.enabled (gt (int $e.autoscaling.minReplicas) (int $e.autoscaling.maxReplicas)) -}}
{{- fail "ensemble.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- if and $t.autoscaling.enabled (gt (int $t.autoscaling.minReplicas) (int $t.autoscaling.maxReplicas)) -}}
{{- fail "triton.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- if and $t.enabled (eq $t.modelControl.mode "explicit") (not (and $t.restrictedProtocols.enabled (has "model-repository" $t.restrictedProtocols.protocols))) -}}
{{- fail "triton.modelControl.mode \"explicit\" opens Triton's model load/unload API: keep it behind the admin key (triton.restrictedProtocols.enabled with \"model-repository\" in its protocols)" -}}
{{- end -}}
{{- if and $t.enabled (gt (int $t.modelRepository.s3.syncIntervalSeconds) 0) (or (ne $t.modelControl.mode "explicit") (ne $t.modelRepository.source "s3")) -}}
{{- fail "triton.modelRepository.s3.syncIntervalSeconds needs triton.modelControl.mode \"explicit\" and modelRepository.source \"s3\" (the sidecar loads what it synced through the repository API)" -}}
{{- end -}}
{{- $r := .Values.rollout -}}
{{- if $r.enabled -}}
{{- $c := $r.config -}}
{{- $canary := false -}}
{{- if $c.canary }}{{ if gt (float64 (default 0 $c.canary.percent)) 0.0 }}{{ $canary = true }}{{ end }}{{ end -}}
{{- if and $c.canary (eq (toString $c.canary.version) (toString $c.stable)) -}}
{{- fail (printf "rollout.config.canary.version (%v) is the stable version" $c.canary.version) -}}
{{- end -}}
{{- if and (not $r.registry.existingClaim) (or (ne (toString $c.stable) (toString $r.defaultVersion)) $canary) -}}
{{- fail (printf "rollout.config (stable %v%s) names a version that cannot answer customers without its gate record: set rollout.registry.existingClaim (the registry holding mlflow.db), or keep stable = rollout.defaultVersion (%v) and no canary" $c.stable (ternary (printf ", canary %v" (default "" $c.canary.version)) "" $canary) $r.defaultVersion) -}}
{{- end -}}
{{- end -}}
{{- if and (eq (toString $e.rollingUpdate.maxSurge) "0") (eq (toString $e.rollingUpdate.maxUnavailable) "0") -}}
{{- fail "ensemble.rollingUpdate: maxSurge and maxUnavailable cannot both be 0" -}}
{{- end -}}
{{- if and (eq (toString $t.rollingUpdate.maxSurge) "0") (eq (toString $t.rollingUpdate.maxUnavailable) "0") -}}
{{- fail "triton.rollingUpdate: maxSurge and maxUnavailable cannot both be 0" -}}
{{- end -}}
{{- end -}}

{{/* Ensemble port the kubelet probes (plaintext health port when TLS is on). */}}
{{- define "mangaassist.ensemble.probePort" -}}
{{- if .Values.tls.enabled -}}{{ .Values.tls.healthPort }}{{- else -}}{{ .Values.ensemble.ports.grpc }}{{- end -}}
{{- end -}}
