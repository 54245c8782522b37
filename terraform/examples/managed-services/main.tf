# Managed data plane (e.g. RDS Proxy in front of Postgres, ElastiCache with TLS, S3); only the
# functions, H2O and Mage run in the cluster. Credentials come in as sensitive variables.
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

module "converge" {
  source = "../.."

  namespace      = "converge"
  image_registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/converge"
  image_tag      = "0.1.0"

  postgres = {
    managed     = true
    host        = "converge.proxy-abc123.eu-west-1.rds.amazonaws.com"
    port        = 5432
    direct_host = "converge.cluster-abc123.eu-west-1.rds.amazonaws.com"
  }
  postgres_password          = var.db_password
  postgres_role_passwords    = var.db_role_passwords
  postgres_migrator_password = var.db_migrator_password

  redis = {
    managed = true
    host    = "master.converge.abc123.euw1.cache.amazonaws.com"
    tls     = true
  }
  redis_password = var.redis_auth_token

  s3 = {
    managed  = true
    endpoint = "https://s3.eu-west-1.amazonaws.com"
    region   = "eu-west-1"
    bucket   = "example-converge-models"
  }
  s3_access_key = var.s3_access_key
  s3_secret_key = var.s3_secret_key
  s3_reader     = var.s3_reader

  external_egress_cidrs = ["10.0.0.0/16"]
}

output "database_endpoint" {
  description = "Pooler endpoint the functions use."
  value       = module.converge.database_endpoint
}

output "predict_url" {
  description = "URL of the predict function."
  value       = module.converge.predict_url
}
