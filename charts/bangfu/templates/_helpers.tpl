{{/*
Helpers of the bangfu chart. Every template ranges over the enabled services
("bangfu.enabledServices") and renders one object per service from the view that
"bangfu.service" computes, so a service is a few lines of values and never a template file.
*/}}

{{/* The enabled services' names, sorted, as a JSON list. */}}
{{- define "bangfu.enabledServices" -}}
{{- $names := list -}}
{{- range $name, $svc := .Values.services -}}
{{- if and $svc $svc.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- $names | sortAlpha | toJson -}}
{{- end -}}

{{/* A service's name in object names and labels: identity, welfare-post, … */}}
{{- define "bangfu.dnsName" -}}
{{- . | replace "_" "-" -}}
{{- end -}}

{{/* <release>-<service>, at most 63 characters. Takes (dict "root" $ "name" NAME). */}}
{{- define "bangfu.fullname" -}}
{{- printf "%s-%s" .root.Release.Name (include "bangfu.dnsName" .name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one service's pods. Takes (dict "root" $ "name" NAME). */}}
{{- define "bangfu.selectorLabels" -}}
app.kubernetes.io/name: bangfu
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ include "bangfu.dnsName" .name }}
{{- end -}}

{{/* Labels of every object. Takes (dict "root" $ "name" NAME). */}}
{{- define "bangfu.labels" -}}
{{ include "bangfu.selectorLabels" . }}
app.kubernetes.io/part-of: bangfu
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Public key files to mount beside trust.json: keys.publicKeyFiles, or else the *.pub.pem keys of
the service's keys Secret as the cluster has it (lookup finds nothing under `helm template`).
Takes (dict "root" $ "secret" NAME); returns a JSON list.
*/}}
{{- define "bangfu.publicKeyFiles" -}}
{{- $files := .root.Values.keys.publicKeyFiles | default list -}}
{{- if not $files -}}
{{- $found := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- range $key, $_ := ($found.data | default dict) -}}
{{- if hasSuffix ".pub.pem" $key -}}
{{- $files = append $files $key -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $files | sortAlpha | toJson -}}
{{- end -}}

{{/*
Everything the templates need about one service, as YAML: names, secrets (rendered), the
settings merged over the chart-wide ones, who calls it, and the ConfigMap's variables.
Takes (dict "root" $ "name" NAME). Fails, naming the value, on what the schema cannot check.
*/}}
{{- define "bangfu.service" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $v := $root.Values -}}
{{- $svc := index $v.services $name -}}
{{- $path := printf "services.%s" $name -}}
{{- $fullname := include "bangfu.fullname" . -}}
{{- $autoscaling := mergeOverwrite (deepCopy $v.autoscaling) ($svc.autoscaling | default dict) -}}
{{- if and $autoscaling.enabled (lt (int $autoscaling.maxReplicas) (int $svc.replicas)) -}}
{{- fail (printf "autoscaling.maxReplicas (%v, or %s.autoscaling.maxReplicas) is below %s.replicas (%v): the HPA scales from replicas up to maxReplicas" $autoscaling.maxReplicas $path $path $svc.replicas) -}}
{{- end -}}
{{- range $peer := $svc.calls | default list -}}
{{- if eq $peer $name -}}
{{- fail (printf "%s.calls names the service itself" $path) -}}
{{- end -}}
{{- end -}}
{{- $callers := list -}}
{{- range $other, $o := $v.services -}}
{{- if and $o $o.enabled (has $name ($o.calls | default list)) -}}
{{- $callers = append $callers $other -}}
{{- end -}}
{{- end -}}
{{- $tlsSecret := tpl (($svc.secrets).tls | default $v.tls.secretName) $root -}}
{{- if and $v.tls.enabled (not $tlsSecret) -}}
{{- fail "tls.secretName is empty while tls.enabled is true: name the TLS Secret of the gRPC port" -}}
{{- end -}}
{{- $keysSecret := tpl $svc.secrets.keys $root -}}
{{- $ca := $v.database.ca -}}
{{- if and $ca.secretName $ca.configMapName -}}
{{- fail "database.ca: give secretName or configMapName, not both" -}}
{{- end -}}
{{- $env := dict
  "BANGFU_LISTEN" (printf "0.0.0.0:%v" $v.ports.grpc)
  "BANGFU_HEALTH_LISTEN" (printf "0.0.0.0:%v" $v.ports.health)
  "BANGFU_KEYS_DIR" "/etc/bangfu/keys/public"
  "BANGFU_SIGNING_KEY" "/etc/bangfu/keys/signing.json"
  "BANGFU_LOG" $v.config.log
  "BANGFU_LOG_FORMAT" "json"
  "BANGFU_SHUTDOWN_GRACE_SECONDS" (toString $v.config.shutdownGraceSeconds)
-}}
{{- if $svc.dataKeys -}}
{{- $_ := set $env "BANGFU_DATA_KEYS" "/etc/bangfu/keys/data-keys.json" -}}
{{- end -}}
{{- if $v.tls.enabled -}}
{{- $_ := set $env "BANGFU_TLS_CERT" "/etc/bangfu/tls/tls.crt" -}}
{{- $_ := set $env "BANGFU_TLS_KEY" "/etc/bangfu/tls/tls.key" -}}
{{- if $v.tls.requireClientCertificates -}}
{{- $_ := set $env "BANGFU_TLS_CLIENT_CA" "/etc/bangfu/tls/ca.crt" -}}
{{- end -}}
{{- end -}}
{{- if $v.revocation.configMapName -}}
{{- $_ := set $env "BANGFU_REVOCATION_FILE" "/etc/bangfu/revocation/revoked.json" -}}
{{- end -}}
{{- /* Each service it calls, at that service's Service; https with the chart's CA under TLS. */ -}}
{{- range $peer := $svc.calls | default list -}}
{{- $peerName := include "bangfu.fullname" (dict "root" $root "name" $peer) -}}
{{- $scheme := ternary "https" "http" $v.tls.enabled -}}
{{- $_ := set $env (printf "BANGFU_PEER_%s" (upper $peer)) (printf "%s://%s:%v" $scheme $peerName $v.ports.grpc) -}}
{{- end -}}
{{- if and $v.tls.enabled ($svc.calls | default list) -}}
{{- $_ := set $env "BANGFU_PEER_CA" "/etc/bangfu/tls/ca.crt" -}}
{{- end -}}
{{- if $v.otel.endpoint -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" $v.otel.endpoint -}}
{{- end -}}
{{- /*
The exchange's partner port: its file (BANGFU_EXCHANGE_CONFIG) from the partner Secret, mounted
at /etc/bangfu/exchange; the port is admitted from allowedCIDRs alone (networkpolicy.yaml).
*/ -}}
{{- $partner := dict "enabled" false -}}
{{- $p := $svc.partner | default dict -}}
{{- if $p.enabled -}}
{{- if ne $name "exchange" -}}
{{- fail (printf "%s.partner: only the exchange has a partner port" $path) -}}
{{- end -}}
{{- if not ($p.allowedCIDRs | default list) -}}
{{- fail (printf "%s.partner.allowedCIDRs is empty while %s.partner.enabled is true: name the partner provinces' source address ranges (CIDRs), the only ones the NetworkPolicy admits to the partner port" $path $path) -}}
{{- end -}}
{{- $configSecret := tpl ($p.configSecret | default "") $root -}}
{{- if not $configSecret -}}
{{- fail (printf "%s.partner.configSecret is empty while %s.partner.enabled is true: name the Secret holding exchange.json and the files it names" $path $path) -}}
{{- end -}}
{{- $port := int ($p.port | default 50070) -}}
{{- if or (eq $port (int $v.ports.grpc)) (eq $port (int $v.ports.health)) -}}
{{- fail (printf "%s.partner.port (%v) is the gRPC or the health port: the partner port is a listener of its own" $path $port) -}}
{{- end -}}
{{- $configKey := $p.configKey | default "exchange.json" -}}
{{- $_ := set $env "BANGFU_EXCHANGE_CONFIG" (printf "/etc/bangfu/exchange/%s" $configKey) -}}
{{- $partner = dict
  "enabled" true
  "port" $port
  "configSecret" $configSecret
  "configKey" $configKey
  "allowedCIDRs" $p.allowedCIDRs
  "serviceType" (($p.service).type | default "ClusterIP")
  "serviceAnnotations" (($p.service).annotations | default dict)
-}}
{{- end -}}
{{- range $key, $value := merge (deepCopy ($svc.env | default dict)) ($v.config.env | default dict) -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
name: {{ $name }}
dnsName: {{ include "bangfu.dnsName" $name }}
fullname: {{ $fullname }}
replicas: {{ $svc.replicas }}
healthService: {{ $svc.healthService | default (printf "bangfu.%s.v1.%sService" $name (camelcase $name)) }}
dataKeys: {{ $svc.dataKeys | default false }}
calls: {{ $svc.calls | default list | toJson }}
callers: {{ $callers | sortAlpha | toJson }}
secrets:
  database: {{ tpl $svc.secrets.database $root | quote }}
  databaseOwner: {{ tpl $svc.secrets.databaseOwner $root | quote }}
  keys: {{ $keysSecret | quote }}
  tls: {{ $tlsSecret | quote }}
publicKeyFiles: {{ include "bangfu.publicKeyFiles" (dict "root" $root "secret" $keysSecret) }}
autoscaling: {{ $autoscaling | toJson }}
resources: {{ $svc.resources | default $v.resources | toJson }}
databaseEgress: {{ $svc.databaseEgress | default $v.database.egress | toJson }}
networkPolicy: {{ $svc.networkPolicy | default dict | toJson }}
partner: {{ $partner | toJson }}
env: {{ $env | toJson }}
{{- end -}}
