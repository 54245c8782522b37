variable "namespace" {
  description = "Namespace of the platform (Knative Serving and Eventing must already be installed in the cluster)."
  type        = string
  default     = "converge"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "create_namespace" {
  description = "Create the namespace (false when it is managed elsewhere)."
  type        = bool
  default     = true

  validation {
    condition     = !(var.create_namespace && contains(["default", "kube-system", "kube-public", "kube-node-lease"], var.namespace))
    error_message = "Do not let Terraform create (and later destroy) a system namespace."
  }
}

variable "release_name" {
  description = "Helm release name; resources are named after it."
  type        = string
  default     = "converge"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.release_name))
    error_message = "release_name must be a DNS label of at most 40 characters."
  }
}

variable "chart_path" {
  description = "Path of the converge chart; defaults to the chart in this repository."
  type        = string
  default     = null

  validation {
    condition     = var.chart_path == null || try(length(var.chart_path) > 0, false)
    error_message = "chart_path must be null (the repository chart) or a path."
  }
}

variable "image_registry" {
  description = "Registry and namespace of the converge images."
  type        = string
  default     = "ghcr.io/converge-ml"

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$", var.image_registry))
    error_message = "image_registry must look like registry.example.com/team."
  }
}

variable "image_tag" {
  description = "Pinned tag of the functions and training images."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && !contains(["latest", "stable"], var.image_tag)
    error_message = "image_tag must be a pinned tag, not latest or stable."
  }
}

variable "postgres" {
  description = "Postgres in the cluster (managed = false) or a managed one: host is its pooler, direct_host the primary (for Mage)."
  type = object({
    managed     = bool
    host        = optional(string, "")
    port        = optional(number, 5432)
    direct_host = optional(string, "")
    direct_port = optional(number, 5432)
    username    = optional(string, "converge")
    database    = optional(string, "converge")
    # Owns the schema and runs the migrations (the chart's hook Job); managed: create it and grant
    # the user SELECT, INSERT, UPDATE, DELETE on its tables (default privileges).
    migrator_username = optional(string, "converge_migrator")
  })
  default = { managed = false }

  validation {
    condition     = !var.postgres.managed || length(var.postgres.host) > 0
    error_message = "A managed Postgres needs its host."
  }
}

variable "postgres_password" {
  description = "Password of the managed Postgres user."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.postgres.managed || length(var.postgres_password) >= 12
    error_message = "A managed Postgres needs a password of at least 12 characters."
  }
}

variable "postgres_role_passwords" {
  description = "Passwords of the functions' own roles <user>_predict (reads) and <user>_ingest (writes features). A managed Postgres needs both roles created (LOGIN) before migrating; in the cluster random ones are generated."
  type = object({
    predict = optional(string, "")
    ingest  = optional(string, "")
  })
  default   = {}
  sensitive = true

  validation {
    condition     = !var.postgres.managed || (length(var.postgres_role_passwords.predict) >= 12 && length(var.postgres_role_passwords.ingest) >= 12)
    error_message = "A managed Postgres needs predict and ingest role passwords of at least 12 characters."
  }
}

variable "postgres_migrator_password" {
  description = "Password of the managed Postgres migration role (postgres.migrator_username)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.postgres.managed || length(var.postgres_migrator_password) >= 12
    error_message = "A managed Postgres needs a migration role password of at least 12 characters."
  }
}

variable "redis" {
  description = "Redis in the cluster (managed = false) or a managed one."
  type = object({
    managed = bool
    host    = optional(string, "")
    port    = optional(number, 6379)
    db      = optional(number, 0)
    tls     = optional(bool, false)
  })
  default = { managed = false }

  validation {
    condition     = !var.redis.managed || length(var.redis.host) > 0
    error_message = "A managed Redis needs its host."
  }
}

variable "redis_password" {
  description = "Password (AUTH token) of the managed Redis."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.redis.managed || length(var.redis_password) >= 12
    error_message = "A managed Redis needs a password of at least 12 characters."
  }
}

variable "s3" {
  description = "MinIO in the cluster (managed = false) or an S3-compatible service for the MOJO artifacts."
  type = object({
    managed  = bool
    endpoint = optional(string, "")
    region   = optional(string, "us-east-1")
    bucket   = optional(string, "converge-models")
  })
  default = { managed = false }

  validation {
    condition     = !var.s3.managed || can(regex("^https?://", var.s3.endpoint))
    error_message = "Managed S3 needs an http(s) endpoint."
  }
}

variable "s3_access_key" {
  description = "Access key of the managed object store."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.s3.managed || length(var.s3_access_key) > 0
    error_message = "Managed S3 needs an access key."
  }
}

variable "s3_secret_key" {
  description = "Secret key of the managed object store."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.s3.managed || length(var.s3_secret_key) > 0
    error_message = "Managed S3 needs a secret key."
  }
}

variable "s3_reader" {
  description = "Read-only key pair (s3:GetObject and s3:ListBucket on the bucket) for the predict and reload functions. In the cluster MinIO gets a generated reader user."
  type = object({
    access_key = optional(string, "")
    secret_key = optional(string, "")
  })
  default   = {}
  sensitive = true

  validation {
    condition     = !var.s3.managed || (length(var.s3_reader.access_key) > 0 && length(var.s3_reader.secret_key) > 0)
    error_message = "Managed S3 needs a read-only key pair for the functions."
  }
}

variable "h2o" {
  description = "H2O cluster in the release (size, memory limit, heap share) or an external URL."
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
    error_message = "h2o.heap_percent must be within 1..70."
  }
}

variable "functions" {
  description = "Autoscaling of the predict, reload and ingest functions."
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
}

variable "mage_ingress_host" {
  description = "Host of the Mage UI behind TLS; empty keeps it cluster-internal."
  type        = string
  default     = ""

  validation {
    condition     = var.mage_ingress_host == "" || can(regex("^[a-z0-9.-]+$", var.mage_ingress_host))
    error_message = "mage_ingress_host must be a host name."
  }
}

variable "predict_domain" {
  description = "Custom TLS domain for predict; empty uses the Knative default domain."
  type        = string
  default     = ""

  validation {
    condition     = var.predict_domain == "" || can(regex("^[a-z0-9.-]+$", var.predict_domain))
    error_message = "predict_domain must be a host name."
  }
}

variable "external_egress_cidrs" {
  description = "CIDRs of the managed services, opened in the NetworkPolicies."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.external_egress_cidrs : can(cidrnetmask(c))])
    error_message = "external_egress_cidrs must be IPv4 CIDRs."
  }
}

variable "extra_values" {
  description = "Further converge chart values, merged last."
  type        = any
  default     = {}

  validation {
    condition     = can(keys(var.extra_values))
    error_message = "extra_values must be an object."
  }
}
