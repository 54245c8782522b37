variable "name" {
  description = "Prefix of the Secrets this module creates; use the Helm release name so names line up."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 40 characters."
  }
}

variable "namespace" {
  description = "Namespace of the release; the Secrets are created there."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "postgres" {
  description = "Postgres: in the cluster (managed = false, the chart runs Postgres and PgBouncer) or a managed service reached through its pooler endpoint."
  type = object({
    managed     = bool
    host        = optional(string, "")
    port        = optional(number, 5432)
    direct_host = optional(string, "")
    direct_port = optional(number, 5432)
    username    = optional(string, "converge")
    database    = optional(string, "converge")
    # Owns the schema; runs the migrations. Managed: create it and grant the user read/write.
    migrator_username = optional(string, "converge_migrator")
  })
  default = { managed = false }

  validation {
    condition     = !var.postgres.managed || length(var.postgres.host) > 0
    error_message = "A managed Postgres needs its host."
  }
  validation {
    condition     = var.postgres.port > 0 && var.postgres.port < 65536 && var.postgres.direct_port > 0 && var.postgres.direct_port < 65536
    error_message = "Postgres ports must be within 1..65535."
  }
}

variable "redis" {
  description = "Redis: in the cluster (managed = false) or a managed service (e.g. ElastiCache with TLS)."
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
  validation {
    condition     = var.redis.db >= 0 && var.redis.db <= 15
    error_message = "redis.db must be within 0..15."
  }
}

variable "s3" {
  description = "Object storage for MOJO artifacts: MinIO in the cluster (managed = false) or an S3-compatible service."
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
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3.bucket))
    error_message = "s3.bucket must be a valid bucket name."
  }
}

variable "labels" {
  description = "Labels added to every Secret this module creates."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : length(v) <= 63])
    error_message = "Label values must be at most 63 characters."
  }
}

variable "postgres_password" {
  description = "Password of the managed Postgres user (ignored in the cluster, where a random one is generated)."
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

variable "migrator_password" {
  description = "Password of the managed Postgres migration role (ignored in the cluster, where a random one is generated)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.postgres.managed || length(var.migrator_password) >= 12
    error_message = "A managed Postgres needs a migration role password of at least 12 characters."
  }
}

variable "redis_password" {
  description = "Password (AUTH token) of the managed Redis (ignored in the cluster)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.redis.managed || length(var.redis_password) >= 12
    error_message = "A managed Redis needs a password of at least 12 characters."
  }
}

variable "s3_access_key" {
  description = "Access key of the managed object store (ignored in the cluster)."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = !var.s3.managed || length(var.s3_access_key) > 0
    error_message = "Managed S3 needs an access key."
  }
}

variable "s3_secret_key" {
  description = "Secret key of the managed object store (ignored in the cluster)."
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
