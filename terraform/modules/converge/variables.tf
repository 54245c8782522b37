variable "release_name" {
  description = "Helm release name; also the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.release_name))
    error_message = "release_name must be a DNS label of at most 40 characters."
  }
}

variable "namespace" {
  description = "Namespace of the release (created by the caller)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "chart_path" {
  description = "Path of the converge chart (charts/converge in this repository, or an unpacked release)."
  type        = string

  validation {
    condition     = length(var.chart_path) > 0
    error_message = "chart_path must not be empty."
  }
}

variable "image_registry" {
  description = "Registry and namespace of the converge images (converge-functions, converge-training, converge-h2o)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$", var.image_registry))
    error_message = "image_registry must look like registry.example.com/team."
  }
}

variable "image_tag" {
  description = "Pinned tag of the functions and training images."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && !contains(["latest", "stable"], var.image_tag)
    error_message = "image_tag must be a pinned tag, not latest or stable."
  }
}

variable "data_plane_values" {
  description = "Chart values wiring Postgres, PgBouncer, Redis and MinIO or their managed replacements (the data-plane module's helm_values)."
  type        = any

  validation {
    condition     = alltrue([for k in ["postgresql", "redis", "minio"] : contains(keys(var.data_plane_values), k)])
    error_message = "data_plane_values must configure postgresql, redis and minio."
  }
}

variable "h2o" {
  description = "H2O cluster: in the release (enabled) with its size, or an external URL."
  type = object({
    enabled      = bool
    replicas     = optional(number, 1)
    memory_limit = optional(string, "4Gi")
    cpu_limit    = optional(string, "2")
    heap_percent = optional(number, 70)
    external_url = optional(string, "")
  })
  default = { enabled = true }

  validation {
    condition     = var.h2o.heap_percent >= 1 && var.h2o.heap_percent <= 70
    error_message = "h2o.heap_percent must be within 1..70: XGBoost needs memory outside the JVM heap."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.h2o.memory_limit)) && var.h2o.replicas >= 1
    error_message = "h2o.memory_limit must be like 4Gi or 4096Mi and replicas at least 1."
  }
  validation {
    condition     = var.h2o.enabled || can(regex("^https?://", var.h2o.external_url))
    error_message = "Without an H2O in the release, h2o.external_url is required."
  }
}

variable "functions" {
  description = "Autoscaling of the Knative functions: max replicas and target concurrency per function."
  type = map(object({
    max_scale          = number
    target_concurrency = number
  }))
  default = {
    predict = { max_scale = 20, target_concurrency = 50 }
    reload  = { max_scale = 2, target_concurrency = 1 }
    ingest  = { max_scale = 10, target_concurrency = 20 }
  }

  validation {
    condition     = length(setsubtract(keys(var.functions), ["predict", "reload", "ingest"])) == 0
    error_message = "functions keys must be predict, reload or ingest."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.max_scale >= 1 && f.target_concurrency >= 1])
    error_message = "max_scale and target_concurrency must be at least 1."
  }
}

variable "mage_ingress_host" {
  description = "Host name of the Mage UI behind TLS; empty keeps Mage cluster-internal."
  type        = string
  default     = ""

  validation {
    condition     = var.mage_ingress_host == "" || can(regex("^[a-z0-9.-]+$", var.mage_ingress_host))
    error_message = "mage_ingress_host must be a host name."
  }
}

variable "predict_domain" {
  description = "Custom domain mapped with TLS onto predict; empty uses the Knative default domain."
  type        = string
  default     = ""

  validation {
    condition     = var.predict_domain == "" || can(regex("^[a-z0-9.-]+$", var.predict_domain))
    error_message = "predict_domain must be a host name."
  }
}

variable "external_egress_cidrs" {
  description = "CIDRs of managed services the pods may reach through the NetworkPolicies."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.external_egress_cidrs : can(cidrnetmask(c))])
    error_message = "external_egress_cidrs must be IPv4 CIDRs."
  }
}

variable "extra_values" {
  description = "Further chart values, merged last (the chart's values.schema.json rejects unknown keys)."
  type        = any
  default     = {}

  validation {
    condition     = can(keys(var.extra_values))
    error_message = "extra_values must be an object."
  }
}

variable "timeout_seconds" {
  description = "How long Helm waits for the release to become ready."
  type        = number
  default     = 900

  validation {
    condition     = var.timeout_seconds >= 60 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be within 60..3600."
  }
}
