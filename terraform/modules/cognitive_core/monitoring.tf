# Monitoring: log-based metrics on the stable log fields (shared/logs.py,
# STABLE_EVENT_FIELDS), a dashboard and the alert policies the seeds ask for:
# latency per provider, success rate, cost, cache hit rate, 5xx, retrain outcomes.
#
# Sources:
#   - the functions' structured events (`jsonPayload.event` = llm_call, embedding_cache,
#     chat_turn, retrain_run) -> the log-based metrics below;
#   - Cloud Run's own request metrics (2nd gen functions are Cloud Run services):
#     run.googleapis.com/request_count and request_latencies per service_name, which need
#     no code at all (5xx rate, chat p95 latency).
# Conditions are PromQL: log-based metric logging.googleapis.com/user/<name> is
# logging_googleapis_com:user_<name> there, so metric names use underscores only;
# distribution metrics are histograms (_sum, _count, _bucket).

locals {
  metric_prefix = replace(local.prefix, "-", "_")
  log_scope     = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${local.prefix}-\""

  # Name -> metric definition. value_field set = a distribution of that field.
  log_metrics = {
    llm_calls = {
      description = "LLM attempts by provider, model and outcome (ok or error)."
      event       = "llm_call"
      value_field = null
      labels      = ["provider", "model", "outcome"]
    }
    llm_latency_ms = {
      description = "LLM attempt latency (ms) by provider."
      event       = "llm_call"
      value_field = "latency_ms"
      labels      = ["provider", "outcome"]
    }
    llm_cost_usd = {
      description = "Estimated LLM cost (USD) per attempt by provider and model; the sum is the spend."
      event       = "llm_call"
      value_field = "cost_usd"
      labels      = ["provider", "model"]
    }
    llm_tokens_out = {
      description = "Completion tokens per LLM attempt by provider."
      event       = "llm_call"
      value_field = "tokens_out"
      labels      = ["provider"]
    }
    embedding_cache_hits = {
      description = "Texts answered from an embedding cache, per lookup batch."
      event       = "embedding_cache"
      value_field = "hits"
      labels      = ["route"]
    }
    embedding_cache_misses = {
      description = "Texts that had to be embedded, per lookup batch."
      event       = "embedding_cache"
      value_field = "misses"
      labels      = ["route"]
    }
    chat_turn_latency_ms = {
      description = "Whole chat turn latency (ms), LLM included, by provider and model version."
      event       = "chat_turn"
      value_field = "latency_ms"
      labels      = ["provider", "model_version", "status"]
    }
    retrain_runs = {
      description = "Training runs by outcome (published, rejected by the gate, failed)."
      event       = "retrain_run"
      value_field = null
      labels      = ["outcome", "model_version"]
    }
  }

  promql = {
    provider_failure_ratio = "sum by (provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_calls{outcome=\"error\"}[10m])) / sum by (provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_calls[10m])) > ${var.alert_thresholds.provider_failure_ratio}"
    chat_p95_latency       = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:request_latencies_bucket{monitored_resource=\"cloud_run_revision\", service_name=\"${local.prefix}-chat\"}[5m]))) > ${var.alert_thresholds.chat_p95_latency_ms}"
    cache_hit_rate         = "sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_hits_sum[30m])) / (sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_hits_sum[30m])) + sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_misses_sum[30m]))) < ${var.alert_thresholds.cache_hit_rate_min}"
    daily_llm_cost         = "sum(increase(logging_googleapis_com:user_${local.metric_prefix}_llm_cost_usd_sum[1d])) > ${var.llm_daily_budget_usd}"
    http_5xx_ratio         = "sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\", service_name=~\"${local.prefix}-.*\", response_code_class=\"5xx\"}[5m])) / sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\", service_name=~\"${local.prefix}-.*\"}[5m])) > ${var.alert_thresholds.http_5xx_ratio}"
    retrain_bad_runs       = "sum(increase(logging_googleapis_com:user_${local.metric_prefix}_retrain_runs{outcome=~\"failed|rejected\"}[1d])) > 0"
  }

  alerts = {
    provider_failure_ratio = {
      name     = "LLM provider failure rate"
      duration = "300s"
      doc      = "More than ${var.alert_thresholds.provider_failure_ratio * 100}% of one provider's LLM attempts failed over 10 minutes. The router falls back to the next provider and opens the breaker; check the provider's status page, the key's quota (Secret Manager version) and `GET /api/health`."
    }
    chat_p95_latency = {
      name     = "Chat p95 latency over ${var.alert_thresholds.chat_p95_latency_ms / 1000} s"
      duration = "600s"
      doc      = "The chat function's 95th percentile request latency (Cloud Run) exceeded ${var.alert_thresholds.chat_p95_latency_ms} ms for 10 minutes. Usually the LLM provider: compare llm_latency_ms per provider on the dashboard. Streams count until their last byte."
    }
    cache_hit_rate = {
      name     = "Embedding cache hit rate under ${var.alert_thresholds.cache_hit_rate_min * 100}%"
      duration = "1800s"
      doc      = "Fewer than ${var.alert_thresholds.cache_hit_rate_min * 100}% of texts were answered from the embedding caches over 30 minutes: Memorystore unreachable (see the shared cache cooldown warnings) or a new encoder version (keys include the model)."
    }
    daily_llm_cost = {
      name     = "Daily LLM cost over budget"
      duration = "0s"
      doc      = "The estimated LLM spend of the last 24 hours passed ${var.llm_daily_budget_usd} USD (llm_daily_budget_usd). Check tokens per provider on the dashboard and the chat request rate."
    }
    http_5xx_ratio = {
      name     = "5xx rate"
      duration = "300s"
      doc      = "More than ${var.alert_thresholds.http_5xx_ratio * 100}% of requests to the functions answered 5xx over 5 minutes. The request id in each error body finds the log line; 503 database_unavailable points at Cloud SQL."
    }
    retrain_bad_runs = {
      name     = "Retrain run failed or rejected"
      duration = "0s"
      doc      = "A training run ended failed or was rejected by the evaluation gate in the last day; the model in service is unchanged. Read the run's reason in the training_runs table or its log line, and the Vertex AI custom job in the console."
    }
  }
}

resource "google_logging_metric" "event" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = "${local.metric_prefix}_${each.key}"
  description = "cognitive-core ${var.environment}: ${each.value.description}"
  filter      = "${local.log_scope} AND jsonPayload.event=\"${each.value.event}\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = each.value.value_field == null ? "INT64" : "DISTRIBUTION"
    unit         = each.value.value_field == null ? "1" : (endswith(each.value.value_field, "_ms") ? "ms" : "1")
    display_name = "cognitive-core ${var.environment} ${each.key}"

    dynamic "labels" {
      for_each = toset(each.value.labels)
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }

  value_extractor  = each.value.value_field == null ? null : "EXTRACT(jsonPayload.${each.value.value_field})"
  label_extractors = { for label in each.value.labels : label => "EXTRACT(jsonPayload.${label})" }

  dynamic "bucket_options" {
    for_each = each.value.value_field == null ? [] : [1]
    content {
      exponential_buckets {
        num_finite_buckets = 40
        growth_factor      = 1.4
        scale              = 0.01
      }
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "alert" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = "cognitive-core ${var.environment}: ${each.value.name}"
  combiner              = "OR"
  severity              = each.key == "http_5xx_ratio" || each.key == "provider_failure_ratio" ? "ERROR" : "WARNING"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  conditions {
    display_name = each.value.name
    condition_prometheus_query_language {
      query               = local.promql[each.key]
      duration            = each.value.duration
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [google_logging_metric.event, google_project_service.api]
}

resource "google_monitoring_dashboard" "main" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "cognitive-core ${var.environment}"
    mosaicLayout = {
      columns = 12
      tiles = [for i, tile in [
        { title = "LLM p95 latency per provider (ms)", q = "histogram_quantile(0.95, sum by (le, provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_latency_ms_bucket[5m])))" },
        { title = "LLM success rate per provider", q = "sum by (provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_calls{outcome=\"ok\"}[10m])) / sum by (provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_calls[10m]))" },
        { title = "LLM cost per hour (USD) per provider", q = "sum by (provider) (increase(logging_googleapis_com:user_${local.metric_prefix}_llm_cost_usd_sum[1h]))" },
        { title = "Embedding cache hit rate", q = "sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_hits_sum[15m])) / (sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_hits_sum[15m])) + sum(rate(logging_googleapis_com:user_${local.metric_prefix}_embedding_cache_misses_sum[15m])))" },
        { title = "Chat p95 latency (ms, Cloud Run)", q = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:request_latencies_bucket{monitored_resource=\"cloud_run_revision\", service_name=\"${local.prefix}-chat\"}[5m])))" },
        { title = "Chat turn p95 latency by model version (ms)", q = "histogram_quantile(0.95, sum by (le, model_version) (rate(logging_googleapis_com:user_${local.metric_prefix}_chat_turn_latency_ms_bucket[5m])))" },
        { title = "Requests per function by status class", q = "sum by (service_name, response_code_class) (rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\", service_name=~\"${local.prefix}-.*\"}[5m]))" },
        { title = "Completion tokens per provider", q = "sum by (provider) (rate(logging_googleapis_com:user_${local.metric_prefix}_llm_tokens_out_sum[10m]))" },
        { title = "Retrain runs by outcome", q = "sum by (outcome) (increase(logging_googleapis_com:user_${local.metric_prefix}_retrain_runs[1d]))" },
        ] : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = tile.title
          xyChart = {
            dataSets = [{ timeSeriesQuery = { prometheusQuery = tile.q }, plotType = "LINE" }]
          }
        }
      }]
    }
  })

  depends_on = [google_logging_metric.event, google_project_service.api]
}
