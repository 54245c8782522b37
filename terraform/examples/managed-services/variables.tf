variable "kubeconfig_path" {
  description = "Kubeconfig the helm and kubernetes providers use."
  type        = string
  default     = "~/.kube/config"

  validation {
    condition     = length(var.kubeconfig_path) > 0
    error_message = "kubeconfig_path must not be empty."
  }
}

variable "kube_context" {
  description = "Kubeconfig context; empty uses the current context."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9@:/._-]*$", var.kube_context))
    error_message = "kube_context contains characters a context name cannot have."
  }
}

variable "db_password" {
  description = "Password of the managed Postgres user."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_password) >= 12
    error_message = "Use at least 12 characters."
  }
}

variable "db_role_passwords" {
  description = "Passwords of the roles <user>_predict and <user>_ingest, created by the DBA (LOGIN) before the first migration."
  type        = object({ predict = string, ingest = string })
  sensitive   = true

  validation {
    condition     = length(var.db_role_passwords.predict) >= 12 && length(var.db_role_passwords.ingest) >= 12
    error_message = "Use at least 12 characters for each."
  }
}

variable "s3_reader" {
  description = "A read-only key pair (s3:GetObject, s3:ListBucket on the bucket) for the predict and reload functions."
  type        = object({ access_key = string, secret_key = string })
  sensitive   = true

  validation {
    condition     = length(var.s3_reader.access_key) > 0 && length(var.s3_reader.secret_key) > 0
    error_message = "Both keys must be set."
  }
}

variable "db_migrator_password" {
  description = "Password of the managed Postgres migration role (owns the schema)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_migrator_password) >= 12
    error_message = "Use at least 12 characters."
  }
}

variable "redis_auth_token" {
  description = "AUTH token of the managed Redis."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_auth_token) >= 12
    error_message = "Use at least 12 characters."
  }
}

variable "s3_access_key" {
  description = "Access key with read/write on the models bucket."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.s3_access_key) > 0
    error_message = "The access key must not be empty."
  }
}

variable "s3_secret_key" {
  description = "Secret key matching s3_access_key."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.s3_secret_key) > 0
    error_message = "The secret key must not be empty."
  }
}
