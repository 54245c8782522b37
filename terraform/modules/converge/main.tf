locals {
  # Same rule as the chart's converge.fullname helper.
  fullname = substr(length(regexall("converge", var.release_name)) > 0 ? var.release_name : "${var.release_name}-converge", 0, 40)
  suffix   = "${var.namespace}.svc.cluster.local"

  values = {
    images = {
      functions = { repository = "${var.image_registry}/converge-functions", tag = var.image_tag }
      training  = { repository = "${var.image_registry}/converge-training", tag = var.image_tag }
    }
    functions = {
      for name, f in var.functions : name => {
        maxScale          = tostring(f.max_scale)
        targetConcurrency = f.target_concurrency
      }
    }
    h2o = {
      enabled     = var.h2o.enabled
      replicas    = var.h2o.replicas
      heapPercent = var.h2o.heap_percent
      image       = { repository = "${var.image_registry}/converge-h2o" }
      resources = {
        requests = { cpu = var.h2o.cpu_limit, memory = var.h2o.memory_limit }
        limits   = { cpu = var.h2o.cpu_limit, memory = var.h2o.memory_limit }
      }
    }
    externalH2o = { url = var.h2o.external_url }
    mage = {
      ingress = {
        enabled = var.mage_ingress_host != ""
        host    = var.mage_ingress_host == "" ? "mage.example.com" : var.mage_ingress_host
      }
    }
    networkPolicy = { externalEgressCidrs = var.external_egress_cidrs }
  }

  domain_mapping = var.predict_domain == "" ? {} : {
    functions = { domainMapping = { enabled = true, host = var.predict_domain } }
  }
}

resource "helm_release" "converge" {
  name             = var.release_name
  namespace        = var.namespace
  create_namespace = false
  chart            = var.chart_path
  atomic           = true
  wait             = true
  timeout          = var.timeout_seconds
  # The chart's hooks run: the migration Job before the functions on install and upgrade (a
  # failed migration fails the release, and atomic rolls it back), then the bucket Job.
  disable_webhooks = false
  wait_for_jobs    = true

  # Later documents win: data plane, then sizing, then the caller's extras.
  values = [
    yamlencode(var.data_plane_values),
    yamlencode(local.values),
    yamlencode(local.domain_mapping),
    yamlencode(var.extra_values),
  ]
}
